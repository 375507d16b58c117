//! full_link keeps every sample request on one variant across its hops, as
//! its table says.

mod support;

#[test]
fn every_hop_serves_the_edge_variant() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_full_link"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| {
            l.ends_with(" yes") || l.ends_with(" NO") || l.contains(" yes ") || l.contains(" NO ")
        })
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 12, "{stdout}");
    for row in &rows {
        // ... edge orders-<v> inventory-<v> yes
        let n = row.len();
        let (edge, orders, inventory, ok) = (row[n - 4], row[n - 3], row[n - 2], row[n - 1]);
        assert_eq!(ok, "yes", "{row:?}");
        assert_eq!(orders, format!("orders-{edge}"), "{row:?}");
        assert_eq!(inventory, format!("inventory-{edge}"), "{row:?}");
    }
    // The edge variant of a sample, by the start of its label.
    let edge = |label: &str| {
        rows.iter()
            .find(|r| r.join(" ").starts_with(label))
            .map(|r| r[r.len() - 4])
    };
    assert_eq!(edge("x-tester: yes"), Some("gray"));
    assert_eq!(edge("x-gray: gray"), Some("stable"));
    assert_eq!(edge("baggage: gray=gray"), Some("stable"));
    assert_eq!(edge("x-user-id: user-3"), Some("gray"));
    assert_eq!(edge("x-user-id: user-1"), Some("stable"));
    assert!(stdout.contains("12 of 12 requests kept their variant on every hop"));
}

#[test]
fn the_tonic_example_routes_by_tag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tonic"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("no tag in scope          -> served by stable"),
        "{stdout}"
    );
    assert!(
        stdout.contains("in a gray scope          -> served by gray"),
        "{stdout}"
    );
    assert!(
        stdout.contains("x-beta: 1 metadata       -> served by gray"),
        "{stdout}"
    );
}
