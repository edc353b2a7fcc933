//! Reading a JSON object field by field, so that every refusal names the
//! field at fault (`data.access_schedule[1].ending_before`) and says why.

use crate::error::ApiError;
use crate::time::{parse_time, Time};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest id or name we accept; long enough for any billing system's ids.
pub const MAX_ID_LEN: usize = 256;

pub struct Fields<'a> {
    object: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The value must be a JSON object; `path` names it in the error.
    pub fn of(value: &'a Value, path: &str) -> Result<Self, ApiError> {
        match value {
            Value::Object(object) => Ok(Self { object }),
            _ => Err(ApiError::invalid(path, "must be a JSON object")),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.object.contains_key(name)
    }

    /// Present and not null.
    pub fn given(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|v| !v.is_null())
    }

    pub fn required(&self, name: &str) -> Result<&'a Value, ApiError> {
        self.given(name)
            .ok_or_else(|| ApiError::invalid(name, format!("`{name}` is required")))
    }

    pub fn string(&self, name: &str) -> Result<String, ApiError> {
        as_string(self.required(name)?, name)
    }

    pub fn optional_string(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.given(name).map(|v| as_string(v, name)).transpose()
    }

    /// A non-empty id of at most MAX_ID_LEN characters.
    pub fn id(&self, name: &str) -> Result<String, ApiError> {
        check_id(self.string(name)?, name)
    }

    pub fn optional_id(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.optional_string(name)?
            .map(|id| check_id(id, name))
            .transpose()
    }

    pub fn time(&self, name: &str) -> Result<Time, ApiError> {
        as_time(self.required(name)?, name)
    }

    pub fn optional_time(&self, name: &str) -> Result<Option<Time>, ApiError> {
        self.given(name).map(|v| as_time(v, name)).transpose()
    }

    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.given(name)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    ApiError::invalid(name, format!("`{name}` must be true or false"))
                })
            })
            .transpose()
    }

    /// A finite number >= 0.
    pub fn amount(&self, name: &str) -> Result<f64, ApiError> {
        let value = self.required(name)?;
        let number = value
            .as_f64()
            .ok_or_else(|| ApiError::invalid(name, format!("`{name}` must be a number")))?;
        if !number.is_finite() || number < 0.0 {
            return Err(ApiError::invalid(
                name,
                format!("`{name}` must be a finite number >= 0"),
            ));
        }
        Ok(number)
    }

    pub fn array(&self, name: &str) -> Result<&'a Vec<Value>, ApiError> {
        self.required(name)?
            .as_array()
            .ok_or_else(|| ApiError::invalid(name, format!("`{name}` must be an array")))
    }

    /// An optional array of strings.
    pub fn optional_strings(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(value) = self.given(name) else {
            return Ok(None);
        };
        let items = value.as_array().ok_or_else(|| {
            ApiError::invalid(name, format!("`{name}` must be an array of strings"))
        })?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| as_string(item, &format!("{name}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional object of string values (custom fields).
    pub fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
        let Some(value) = self.given(name) else {
            return Ok(BTreeMap::new());
        };
        let object = value.as_object().ok_or_else(|| {
            ApiError::invalid(name, format!("`{name}` must be an object of strings"))
        })?;
        object
            .iter()
            .map(|(key, v)| Ok((key.clone(), as_string(v, &format!("{name}.{key}"))?)))
            .collect()
    }
}

fn as_string(value: &Value, name: &str) -> Result<String, ApiError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid(name, format!("`{name}` must be a string")))
}

fn as_time(value: &Value, name: &str) -> Result<Time, ApiError> {
    value.as_str().and_then(parse_time).ok_or_else(|| {
        ApiError::invalid(
            name,
            format!("`{name}` must be an RFC 3339 time such as 2026-12-31T00:00:00Z"),
        )
    })
}

fn check_id(id: String, name: &str) -> Result<String, ApiError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(ApiError::invalid(
            name,
            format!("`{name}` must be 1 to {MAX_ID_LEN} characters"),
        ));
    }
    Ok(id)
}
