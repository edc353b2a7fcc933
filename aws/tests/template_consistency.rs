//! `create_table` (used by the tests) and the deployed table of
//! `infra/template.yaml` have the same keys and indexes.

use lifecycle_aws::dynamodb::INDEXES;

/// The lines of the template's Table resource: from `  Table:` to the next
/// line indented by exactly two spaces (the next resource or comment).
fn table_block() -> String {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .expect("infra/template.yaml");
    let lines: Vec<&str> = template
        .lines()
        .skip_while(|line| *line != "  Table:")
        .collect();
    assert!(!lines.is_empty(), "a Table resource");
    let end = lines[1..]
        .iter()
        .position(|line| line.starts_with("  ") && !line.starts_with("   "))
        .map_or(lines.len(), |i| i + 1);
    lines[..end].join("\n")
}

#[test]
fn the_template_declares_the_same_keys_and_indexes() {
    let table = table_block();
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let table = squeeze(&table);
    assert!(table.contains(
        "KeySchema: - { AttributeName: pk, KeyType: HASH } - { AttributeName: sk, KeyType: RANGE }"
    ));
    assert!(table.contains("StreamViewType: NEW_AND_OLD_IMAGES"));
    assert!(table.contains("BillingMode: PAY_PER_REQUEST"));
    assert_eq!(table.matches("IndexName:").count(), INDEXES.len());
    for (index, pk, sk, projected) in INDEXES {
        for attribute in [pk, sk] {
            assert!(
                table.contains(&format!(
                    "{{ AttributeName: {attribute}, AttributeType: S }}"
                )),
                "{attribute} is declared as a string attribute"
            );
        }
        let at = table
            .find(&format!("IndexName: {index} "))
            .unwrap_or_else(|| panic!("index {index}"));
        let next = table[at + 10..]
            .find("IndexName:")
            .map_or(table.len(), |i| at + 10 + i);
        let definition = &table[at..next];
        assert!(
            definition.contains(&format!(
                "KeySchema: - {{ AttributeName: {pk}, KeyType: HASH }} - {{ AttributeName: {sk}, KeyType: RANGE }}"
            )),
            "{index}: keys {pk}/{sk}: {definition}"
        );
        match projected {
            None => assert!(
                definition.contains("ProjectionType: KEYS_ONLY"),
                "{index}: {definition}"
            ),
            Some(attributes) => {
                assert!(definition.contains("ProjectionType: INCLUDE"), "{index}");
                assert!(
                    definition.contains(&format!("NonKeyAttributes: [{}]", attributes.join(", "))),
                    "{index}: projects {attributes:?}: {definition}"
                );
            }
        }
    }
}
