//! The loghub OpenSSH ground truth (tests/fixtures/loghub), read independently of the monitor's
//! parser: what each line is, and the values its template's `<*>` stand for.

/// A fixture file. This module is also compiled into the monitor crate's unit tests (by path),
/// so the fixtures are found from either crate's directory.
pub fn fixture(name: &str) -> String {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = [
        here.join("fixtures/loghub"),
        here.join("../tests/fixtures/loghub"),
    ]
    .into_iter()
    .map(|d| d.join(name))
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("loghub fixture {name} not found"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A CSV line with quoted fields.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

/// The values `<*>` stand for in `content`.
pub fn template_values(template: &str, content: &str) -> Vec<String> {
    let pieces: Vec<&str> = template.split("<*>").collect();
    let mut rest = content.strip_prefix(pieces[0]).expect("template prefix");
    let mut values = Vec::new();
    for (i, piece) in pieces.iter().enumerate().skip(1) {
        let end = if piece.is_empty() && i == pieces.len() - 1 {
            rest.len()
        } else {
            rest.find(piece).expect("template piece")
        };
        values.push(rest[..end].to_owned());
        rest = &rest[end + piece.len()..];
    }
    values
}

/// A login attempt the ground truth records: (accepted?, user, ip, how many).
pub fn logins() -> Vec<(bool, String, String, u64)> {
    let csv = fixture("OpenSSH_2k.log_structured.csv");
    let mut out = Vec::new();
    for row in csv.lines().skip(1).map(csv_fields) {
        let (id, content, template) = (&row[7], &row[6], &row[8]);
        let v = template_values(template, content);
        match id.as_str() {
            "E1" => out.push((true, v[0].clone(), v[1].clone(), 1)),
            "E8" | "E9" | "E10" => out.push((false, v[0].clone(), v[1].clone(), 1)),
            // message repeated N times: [ Failed password for root from IP port P]
            "E14" => out.push((false, "root".into(), v[1].clone(), v[0].parse().unwrap())),
            _ => {}
        }
    }
    out
}
