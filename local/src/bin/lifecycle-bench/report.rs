//! A scenario's figures, each beside its baseline where one exists: printed
//! as a table and written as JSON.

use serde::Serialize;
use serde_json::Value;
use std::path::Path;

#[derive(Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// What the figure is compared with, measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The target for this figure, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Serialize)]
pub struct Report {
    pub scenario: String,
    pub parameters: Value,
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn new(scenario: &str, parameters: Value) -> Self {
        Report {
            scenario: scenario.into(),
            parameters,
            figures: vec![],
        }
    }

    /// A figure with no baseline.
    pub fn figure(&mut self, name: &str, value: f64, unit: &str, target: Option<&str>) {
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            baseline: None,
            baseline_value: None,
            ratio: None,
            target: target.map(str::to_string),
        });
    }

    /// A figure beside its baseline, with their ratio.
    pub fn compared(
        &mut self,
        name: &str,
        value: f64,
        unit: &str,
        baseline: &str,
        baseline_value: f64,
        target: Option<&str>,
    ) {
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            baseline: Some(baseline.into()),
            baseline_value: Some(baseline_value),
            ratio: Some(value / baseline_value),
            target: target.map(str::to_string),
        });
    }

    pub fn print(&self) {
        println!("scenario: {}  {}", self.scenario, self.parameters);
        let rows: Vec<[String; 6]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.name.clone(),
                    format!("{} {}", number(f.value), f.unit),
                    f.baseline.clone().unwrap_or_default(),
                    f.baseline_value.map(number).unwrap_or_default(),
                    f.ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
                    f.target.clone().unwrap_or_default(),
                ]
            })
            .collect();
        let header = [
            "figure",
            "value",
            "baseline",
            "baseline value",
            "ratio",
            "target",
        ];
        let widths: Vec<usize> = (0..6)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].len())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: [&str; 6]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("{}", padded.join("  ").trim_end());
        };
        line(header);
        for row in &rows {
            line(row.each_ref().map(String::as_str));
        }
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = serde_json::to_string_pretty(self).expect("reports serialize");
        std::fs::write(path, text + "\n")?;
        println!("written to {}", path.display());
        Ok(())
    }
}

fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("the template parses")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The q-quantile of sorted values.
pub fn quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}
