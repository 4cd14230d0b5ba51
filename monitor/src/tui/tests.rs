//! The view as a person sees it, drawn on ratatui's `TestBackend`: sessions with their trees,
//! greyed exited processes, the filter, small terminals, hostile strings, and the replay of
//! rendered lines back into the same picture.
use std::{net::SocketAddr, sync::Arc};

use ratatui::{backend::TestBackend, buffer::Buffer, style::Modifier, Terminal};

use super::{
    model::{
        tests::{exec, exit, image, proc_of, rec, ssh_session, user, S, T0},
        Model,
    },
    ui::{Pane, Ui},
    view::{self, Status},
};
use crate::{
    events::net::Address,
    pipeline::record::{ConnectInfo, Proc, Record, What},
};

fn status() -> Status {
    Status {
        source: "up 1h 0m".into(),
        paused: false,
        color: true,
    }
}

fn draw(m: &Model, ui: &mut Ui, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    t.draw(|f| view::draw(f, m, ui, &status())).expect("draw");
    t.backend().buffer().clone()
}

fn text(b: &Buffer) -> String {
    let w = b.area.width as usize;
    b.content
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The row of the screen holding `needle`.
fn row_of(b: &Buffer, needle: &str) -> Option<u16> {
    text(b)
        .lines()
        .position(|l| l.contains(needle))
        .map(|y| y as u16)
}

fn connect(time: i128, p: Proc, local: &str, remote: &str) -> Record {
    let info = ConnectInfo {
        transport: Some("tcp"),
        destination: Some(Address::Inet(remote.parse().unwrap())),
        source: Some(local.parse().unwrap()),
        fd: 3,
        io_uring: false,
        errno: None,
        nonblocking: false,
        connect_duration_ns: None,
        unknown: false,
    };
    rec(time, p, None, What::Connect(Box::new(info)))
}

/// An ssh session of alice: sshd (100) → bash (101) → sleep (102) and curl (103) with a
/// connection out.
fn session_model() -> Model {
    let mut m = Model::new("vm".into(), T0, S / 2);
    let s = ssh_session(7, 100);
    let sshd = proc_of(100, 1, &["/usr/sbin/sshd", "-D", "-R"], T0);
    m.record(&exec(T0, sshd, Some(s.clone())));
    let bash = proc_of(101, 100, &["-bash"], T0 + S);
    m.record(&exec(T0 + S, bash, Some(s.clone())));
    let sleep = proc_of(102, 101, &["sleep", "300", "marker-sleep"], T0 + 2 * S);
    m.record(&exec(T0 + 2 * S, sleep, Some(s.clone())));
    let curl = proc_of(103, 101, &["curl", "http://192.0.2.9/x"], T0 + 3 * S);
    m.record(&exec(T0 + 3 * S, curl.clone(), Some(s.clone())));
    let mut c = connect(T0 + 3 * S, curl, "10.0.0.5:40100", "192.0.2.9:80");
    c.session = Some(Box::new(s));
    m.record(&c);
    // a service without a login
    let nginx = proc_of(
        200,
        1,
        &["/usr/sbin/nginx", "-g", "daemon off;"],
        T0 - 100 * S,
    );
    m.record(&exec(T0 - 100 * S, nginx, None));
    m.frame(T0 + 4 * S);
    m
}

#[test]
fn a_session_shows_who_from_where_and_its_process_tree_and_connection() {
    let m = session_model();
    let b = draw(&m, &mut Ui::default(), 120, 40);
    let screen = text(&b);
    let header = row_of(&b, "alice@127.0.0.1:40222").expect(&screen);
    let line = screen.lines().nth(header as usize).unwrap();
    assert!(line.contains("publickey"), "{line}");
    assert!(line.contains("ED25519 SHA256:abcdefghijkl"), "{line}");
    assert!(line.contains("pts/3"), "{line}");
    // the tree, in order, under the session
    let sshd = row_of(&b, "/usr/sbin/sshd -D -R").expect(&screen);
    let bash = row_of(&b, "-bash").expect(&screen);
    let sleep = row_of(&b, "sleep 300 marker-sleep").expect(&screen);
    let curl = row_of(&b, "curl http://192.0.2.9/x").expect(&screen);
    assert!(
        header < sshd && sshd < bash && bash < sleep && sleep < curl,
        "{screen}"
    );
    assert!(screen.contains("10.0.0.5:40100 → 192.0.2.9:80"), "{screen}");
    // a service is a group of its own, collapsed
    assert!(screen.contains("▸ nginx[200]"), "{screen}");
    assert!(!screen.contains("daemon off"), "collapsed: {screen}");
    // the connections pane names the owner and its session
    assert!(
        screen.lines().any(|l| l.contains("ESTAB")
            && l.contains("curl[103]")
            && l.contains("alice@127.0.0.1")),
        "{screen}"
    );
}

#[test]
fn an_exited_process_is_greyed_then_dropped() {
    let mut m = session_model();
    let sleep = proc_of(102, 101, &["sleep", "300", "marker-sleep"], T0 + 2 * S);
    m.record(&exit(T0 + 5 * S, sleep, 0));
    m.frame(T0 + 6 * S);
    let b = draw(&m, &mut Ui::default(), 120, 40);
    let y = row_of(&b, "marker-sleep").expect("still shown");
    let x = text(&b)
        .lines()
        .nth(y as usize)
        .and_then(|l| l.find("marker-sleep"))
        .map(|byte| {
            text(&b).lines().nth(y as usize).unwrap()[..byte]
                .chars()
                .count()
        })
        .unwrap() as u16;
    assert!(
        b[(x, y)].modifier.contains(Modifier::DIM),
        "greyed: {:?}",
        b[(x, y)]
    );
    assert!(text(&b).contains("[exit 0]"));
    m.frame(T0 + 30 * S);
    let b = draw(&m, &mut Ui::default(), 120, 40);
    assert!(
        row_of(&b, "marker-sleep").is_none(),
        "dropped: {}",
        text(&b)
    );
    assert!(row_of(&b, "-bash").is_some());
}

#[test]
fn the_filter_narrows_every_pane() {
    let m = session_model();
    let mut ui = Ui {
        filter: "marker-sleep".into(),
        ..Default::default()
    };
    let b = draw(&m, &mut ui, 120, 40);
    let screen = text(&b);
    assert!(screen.contains("marker-sleep"), "{screen}");
    // its session and ancestors stay, siblings and other groups go
    assert!(screen.contains("alice@127.0.0.1"), "{screen}");
    assert!(screen.contains("-bash"), "{screen}");
    assert!(!screen.contains("curl http"), "{screen}");
    assert!(!screen.contains("nginx"), "{screen}");
    assert!(screen.contains("(nothing matches the filter)"), "{screen}");
    // by IP: the connection's process and the connection row
    ui.filter = "192.0.2.9".into();
    let screen = text(&draw(&m, &mut ui, 120, 40));
    assert!(screen.contains("curl http://192.0.2.9/x"), "{screen}");
    assert!(!screen.contains("marker-sleep"), "{screen}");
}

#[test]
fn small_and_large_terminals_do_not_panic_or_overflow() {
    let mut m = session_model();
    // many processes and rows, long argv
    let long = "x".repeat(5000);
    for pid in 1000..1400u32 {
        let p = proc_of(pid, 101, &["/bin/prog", &long], T0 + 3 * S);
        m.record(&exec(T0 + 3 * S, p.clone(), Some(ssh_session(7, 100))));
        if pid % 2 == 0 {
            m.record(&exit(T0 + 3 * S + 1_000_000, p, 1));
        }
    }
    for (w, h) in [
        (80, 24),
        (1, 1),
        (10, 3),
        (20, 5),
        (79, 23),
        (200, 60),
        (300, 10),
    ] {
        let mut ui = Ui::default();
        let b = draw(&m, &mut ui, w, h);
        assert_eq!(b.area.width, w);
        if (w, h) == (80, 24) {
            let screen = text(&b);
            assert!(screen.contains("monitor top"), "{screen}");
            assert!(screen.contains("Short-lived processes"), "{screen}");
            assert!(screen.contains("Alerts and logins"), "{screen}");
            assert!(screen.contains("q quit"), "{screen}");
        }
        // every key on every size
        for k in ["j", "G", "g", "\t", "s", "d", "?"] {
            let code = match k {
                "\t" => ratatui::crossterm::event::KeyCode::Tab,
                c => ratatui::crossterm::event::KeyCode::Char(c.chars().next().unwrap()),
            };
            ui.key(code.into());
            draw(&m, &mut ui, w, h);
            ui.overlay = None;
        }
    }
}

#[test]
fn hostile_strings_are_drawn_escaped() {
    let mut m = session_model();
    let evil = "\x1b[2J\x1b]52;c;cm0gLXJm\x07\x1b]0;pwned\x07\x1b[10;10H\u{202e}gpj.exe";
    let p = proc_of(300, 101, &["/tmp/x", evil], T0 + 3 * S);
    m.record(&exec(T0 + 3 * S, p, Some(ssh_session(7, 100))));
    let mut ui = Ui::default();
    let b = draw(&m, &mut ui, 200, 40);
    for cell in &b.content {
        assert!(
            !cell
                .symbol()
                .chars()
                .any(|c| c.is_control() || c == '\u{202e}'),
            "raw control character drawn: {:?}",
            cell.symbol()
        );
    }
    let screen = text(&b);
    assert!(
        screen.contains("\\e[2J\\e]52;c;cm0gLXJm\\x07\\e]0;pwned\\x07\\e[10;10H\\u{202e}gpj.exe"),
        "{screen}"
    );
    // the detail window too
    ui.overlay = Some(super::ui::Overlay::Detail(Box::new(m.procs[&300].clone())));
    let screen = text(&draw(&m, &mut ui, 200, 40));
    assert!(screen.contains("[1] \\e[2J"), "{screen}");
}

#[test]
fn keys_move_toggle_open_and_quit() {
    use ratatui::crossterm::event::KeyCode;
    let m = session_model();
    let mut ui = Ui::default();
    draw(&m, &mut ui, 120, 40);
    // first row: the session; Enter closes it
    ui.key(KeyCode::Enter.into());
    let screen = text(&draw(&m, &mut ui, 120, 40));
    assert!(!screen.contains("marker-sleep"), "{screen}");
    ui.key(KeyCode::Enter.into());
    draw(&m, &mut ui, 120, 40);
    // down to the sleep, details (the view is drawn after every key, as `top` does)
    for _ in 0..3 {
        ui.key(KeyCode::Down.into());
        draw(&m, &mut ui, 120, 40);
    }
    draw(&m, &mut ui, 120, 40);
    let super::ui::Action::Detail(r) = ui.key(KeyCode::Char('d').into()) else {
        panic!("d on a process asks for its details");
    };
    ui.show_detail(m.resolve(r));
    let screen = text(&draw(&m, &mut ui, 120, 40));
    assert!(screen.contains("Process 102"), "{screen}");
    assert!(screen.contains("[2] marker-sleep"), "{screen}");
    assert!(
        screen.contains("101 -bash ← 100 sshd ← 1"),
        "parent chain: {screen}"
    );
    assert!(
        screen.contains("alice@127.0.0.1 (sshd, leader pid 100)"),
        "{screen}"
    );
    ui.key(KeyCode::Esc.into());
    assert!(ui.overlay.is_none());
    // Tab moves the focus, s sorts, / filters, q quits
    ui.key(KeyCode::Tab.into());
    assert_eq!(ui.focus(), Pane::Short);
    ui.key(KeyCode::Char('/').into());
    for c in "nginx".chars() {
        ui.key(KeyCode::Char(c).into());
    }
    ui.key(KeyCode::Enter.into());
    assert_eq!(ui.filter, "nginx");
    ui.key(KeyCode::Esc.into());
    assert!(ui.filter.is_empty());
    assert_eq!(ui.key(KeyCode::Char('q').into()), super::ui::Action::Quit);
}

/// `records` rendered as `watch` writes them.
fn rendered(records: &[Record]) -> String {
    let r = crate::render::Renderer::new("vm".into());
    records
        .iter()
        .filter_map(|rec| r.line(rec))
        .map(|l| serde_json::to_string(&l).unwrap() + "\n")
        .collect()
}

/// `ndjson` read back by the replay into a model (every line understood).
fn replayed(ndjson: &str, tag: &str) -> Model {
    let path = std::env::temp_dir().join(format!("monitor-replay-{tag}-{}", std::process::id()));
    std::fs::write(&path, ndjson).unwrap();
    let capture = super::replay::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(capture.skipped, 0);
    let mut model = Model::new("vm".into(), T0, S / 2);
    for (_, item) in &capture.items {
        super::replay::apply(&mut model, item);
    }
    model
}

/// `records` rendered as `watch` writes them, read back by the replay into a model drawn at
/// `at`.
fn replay(records: &[Record], tag: &str, at: i128) -> Model {
    let mut model = replayed(&rendered(records), tag);
    model.frame(at);
    model
}

#[test]
fn rendered_lines_replay_into_the_same_picture() {
    let live = session_model();
    // the same records, rendered as `watch` would, then read back
    let mut records = Vec::new();
    let s = ssh_session(7, 100);
    for (pid, ppid, args, t) in [
        (100u32, 1u32, vec!["/usr/sbin/sshd", "-D", "-R"], T0),
        (101, 100, vec!["-bash"], T0 + S),
        (102, 101, vec!["sleep", "300", "marker-sleep"], T0 + 2 * S),
        (103, 101, vec!["curl", "http://192.0.2.9/x"], T0 + 3 * S),
    ] {
        records.push(exec(t, proc_of(pid, ppid, &args, t), Some(s.clone())));
    }
    let mut c = connect(
        T0 + 3 * S,
        proc_of(103, 101, &["curl", "http://192.0.2.9/x"], T0 + 3 * S),
        "10.0.0.5:40100",
        "192.0.2.9:80",
    );
    c.session = Some(Box::new(s));
    records.push(c);
    records.push(exec(
        T0 - 100 * S,
        proc_of(
            200,
            1,
            &["/usr/sbin/nginx", "-g", "daemon off;"],
            T0 - 100 * S,
        ),
        None,
    ));
    let replayed = replay(&records, "same-picture", T0 + 4 * S);
    let a = text(&draw(&live, &mut Ui::default(), 120, 40));
    let b = text(&draw(&replayed, &mut Ui::default(), 120, 40));
    // the header's loss line and clock aside, the same screen
    let body = |s: &str| s.lines().skip(3).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&a), body(&b));
}

#[test]
fn ids_and_images_survive_the_replay() {
    let p = Proc {
        pid: 5,
        image: Some(image(&["/bin/x", "a\u{1b}b"])),
        ids: Some(user("bob", 1001)),
        ppid: 1,
        start: Some(T0),
        ..Default::default()
    };
    let r = crate::render::Renderer::new("vm".into());
    let line = r.line(&exec(T0, p, None)).unwrap();
    let json = serde_json::to_string(&line).unwrap();
    let dir = std::env::temp_dir().join(format!("monitor-replay-ids-{}", std::process::id()));
    std::fs::write(&dir, json).unwrap();
    let capture = super::replay::load(&dir).unwrap();
    let _ = std::fs::remove_file(&dir);
    let Some((_, super::replay::Item::Record(rec))) = capture.items.first() else {
        panic!("no record");
    };
    assert_eq!(rec.process.pid, 5);
    assert_eq!(rec.process.start, Some(T0));
    assert_eq!(
        rec.process.image.as_deref().map(|i| i.args.clone()),
        Some(vec![b"/bin/x".to_vec(), b"a\x1bb".to_vec()])
    );
    assert_eq!(
        rec.process.ids.as_ref().and_then(|i| i.user.name.clone()),
        Some(Arc::from("bob"))
    );
}

/// A process placed in a podman container.
fn in_container(mut p: Proc) -> Proc {
    use crate::container::{cgroup::Runtime, Container, Namespaces, Placement};
    p.placement = Some(Arc::new(Placement {
        ns: Namespaces {
            mnt: 4026532177,
            pid: 4026532180,
            net: 4026532181,
        },
        container: Some(Arc::new(Container {
            id: "a07d4b14d4ad55c1e8f5b0f8b4a1d6b1f8a3c2e9d0b7a6f5e4d3c2b1a0f9e8d7".into(),
            runtime: Runtime::Podman,
            name: Some("web\u{1b}[31m".into()),
            image: Some("localhost/bb:1".into()),
        })),
        foreign_root: true,
        foreign_ns: true,
        json: Default::default(),
    }));
    p
}

#[test]
fn a_container_s_processes_are_one_group_named_after_it_and_replay_the_same() {
    let mut m = session_model();
    let nc = in_container(proc_of(300, 290, &["/bin/nc", "-ll", "-p", "8080"], T0 + S));
    let sh = in_container(proc_of(301, 300, &["/bin/sh", "-c", "id"], T0 + 2 * S));
    let records = vec![exec(T0 + S, nc, None), exec(T0 + 2 * S, sh, None)];
    for r in &records {
        m.record(r);
    }
    let mut ui = Ui::default();
    let b = draw(&m, &mut ui, 120, 40);
    let screen = text(&b);
    // its own group, after the login sessions and before the services; the escape is shown
    let header = row_of(
        &b,
        "container web\\e[31m (podman, localhost/bb:1) a07d4b14d4ad",
    )
    .expect(&screen);
    let session = row_of(&b, "alice@127.0.0.1:40222").expect(&screen);
    let nginx = row_of(&b, "nginx[200]").expect(&screen);
    assert!(session < header && header < nginx, "{screen}");
    assert!(screen
        .lines()
        .nth(header as usize)
        .unwrap()
        .contains("2 processes"));
    // the short-lived list says whose container: the shell exits
    let id = in_container(proc_of(302, 301, &["id"], T0 + 3 * S));
    m.record(&exec(T0 + 3 * S, id.clone(), None));
    m.record(&exit(T0 + 3 * S + S / 10, id, 0));
    m.frame(T0 + 4 * S);
    let screen = text(&draw(&m, &mut ui, 120, 40));
    assert!(screen.contains("302 alice@ctr:web"), "{screen}");

    // rendered by watch and read back: the same group
    let ndjson = rendered(&records);
    assert!(ndjson.contains(r#""container":{"id":"a07d4b14d4ad55c1e8f5b0f8b4a1d6b1f8a3c2e9d0b7a6f5e4d3c2b1a0f9e8d7","name":"web\u001b[31m","image":{"name":"localhost/bb:1"},"runtime":"podman"}"#), "{ndjson}");
    assert!(ndjson.contains(r#""executable_in_container":true,"namespaces":{"mnt":4026532177,"pid":4026532180,"net":4026532181}"#), "{ndjson}");
    let replayed = replayed(&ndjson, "ctr");
    let b = draw(&replayed, &mut Ui::default(), 120, 40);
    assert!(
        row_of(
            &b,
            "container web\\e[31m (podman, localhost/bb:1) a07d4b14d4ad"
        )
        .is_some(),
        "{}",
        text(&b)
    );
}

fn accepted(time: i128, p: Proc, local: SocketAddr, remote: SocketAddr) -> Record {
    let info = crate::pipeline::record::SockInfo {
        transport: Some("tcp"),
        local: Some(local),
        remote: Some(remote),
        fd: 5,
        ..Default::default()
    };
    rec(time, p, None, What::Accept(info))
}

fn ended(time: i128, p: Proc, local: SocketAddr, remote: SocketAddr) -> Record {
    let info = crate::pipeline::record::DisconnectInfo {
        local,
        remote,
        direction: Some(crate::state::nettable::Direction::Ingress),
        duration: Some(1_000_000),
        bytes_sent: 100,
        bytes_received: 10,
        errno: 0,
        owner_unknown: false,
    };
    rec(time, p, None, What::Disconnect(info))
}

/// What `top` does with a record: folded into its listener's flood, or a row of its own
/// (its `Floods` only decide); `watch`'s summarising `Floods` is fed the same record, for the
/// replay.
fn take(m: &mut Model, floods: &mut [crate::flood::Floods; 2], r: &Record) {
    let [deciding, summarising] = floods;
    let folded = deciding.fold(r, true);
    assert_eq!(folded, summarising.fold(r, true), "the same decision");
    match folded {
        Some(listener) => m.folded(r, listener),
        None => m.record(r),
    }
}

/// The screen line holding `needle`, from `needle` on (panes sit side by side).
fn line_of(b: &Buffer, needle: &str) -> String {
    let screen = text(b);
    let line = screen
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in\n{screen}"));
    line[line.find(needle).unwrap_or(0)..].trim_end().to_owned()
}

#[test]
fn a_flood_is_one_row_that_counts_every_folded_connection_and_replays_the_same() {
    let server: SocketAddr = "10.0.0.5:443".parse().unwrap();
    let peer = |i: u32| SocketAddr::new([192, 0, 2, (i % 3) as u8].into(), 20000 + i as u16);
    let nginx = proc_of(200, 1, &["/usr/sbin/nginx"], T0 - 100 * S);
    let mut m = Model::new("vm".into(), T0, S / 2);
    m.record(&exec(T0 - 100 * S, nginx.clone(), None));
    let mut floods = [
        crate::flood::Floods::new(20, 10.0).deciding_only(),
        crate::flood::Floods::new(20, 10.0),
    ];
    // 300 connections in one second from 3 peers, each ended; and one of a login session
    for i in 0..300 {
        let r = accepted(T0 + i128::from(i) * S / 300, nginx.clone(), server, peer(i));
        take(&mut m, &mut floods, &r);
    }
    // a server a logged-in admin started, accepting in the same second
    let admin: SocketAddr = "198.51.100.7:50000".parse().unwrap();
    let theirs = proc_of(300, 101, &["python3", "-m", "http.server"], T0 - S);
    let mut own = accepted(T0 + S / 2, theirs, "10.0.0.5:8000".parse().unwrap(), admin);
    own.session = Some(Box::new(ssh_session(7, 100)));
    take(&mut m, &mut floods, &own);
    for i in 0..300 {
        let r = ended(T0 + S + i128::from(i), nginx.clone(), server, peer(i));
        take(&mut m, &mut floods, &r);
    }
    m.frame(T0 + 2 * S);
    assert_eq!(m.floods.len(), 1);
    let f = &m.floods[&(200, server)];
    let single = |m: &Model| m.conns.values().filter(|c| c.local == server).count() as u64;
    // the first 20 of the second are rows, every other one is in the flood: none is lost
    assert_eq!((f.accepted, single(&m)), (280, 20));
    assert_eq!((f.ended, f.open()), (280, 0));
    assert_eq!((f.bytes_sent, f.bytes_received), (28_000, 2_800));
    assert_eq!(f.distinct_peers(), 3);
    assert!(
        m.conns
            .contains_key(&("10.0.0.5:8000".parse().unwrap(), admin)),
        "the session's connection is a row of its own"
    );
    let live = draw(&m, &mut Ui::default(), 400, 50);
    let row = line_of(&live, "FLOOD");
    assert_eq!(
        row,
        "FLOOD  tcp 10.0.0.5:443 ← 280 accepted (140/s) nginx[200] alice · from 3 peers: \
         192.0.2.2×94 192.0.2.0×93 192.0.2.1×93 · open 0 · ↑27.3K ↓2.7K"
    );
    assert!(
        line_of(&live, "Connections and listeners").contains("280 folded into floods"),
        "the pane's title counts the folded"
    );

    // the summary line `watch` writes for the same flood, read back by the replay
    let r = crate::render::Renderer::new("vm".into());
    assert!(
        floods[0].due(T0 + 2 * S, true).is_empty(),
        "top builds no summary"
    );
    let summaries = floods[1].due(T0 + 2 * S, true);
    assert_eq!(summaries.len(), 1);
    let ndjson: String = std::iter::once(r.line(&exec(T0 - 100 * S, nginx, None)).unwrap())
        .chain(
            summaries
                .iter()
                .map(|s| crate::render::net::summary_line(&r, s)),
        )
        .map(|l| serde_json::to_string(&l).unwrap() + "\n")
        .collect();
    let path = std::env::temp_dir().join(format!("monitor-replay-flood-{}", std::process::id()));
    std::fs::write(&path, ndjson).unwrap();
    let capture = super::replay::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(capture.skipped, 0, "the summary line is understood");
    let mut replayed = Model::new("vm".into(), T0, S / 2);
    for (_, item) in &capture.items {
        super::replay::apply(&mut replayed, item);
    }
    replayed.frame(T0 + 2 * S);
    let f = &replayed.floods[&(200, server)];
    assert_eq!((f.accepted, f.ended, f.distinct_peers()), (280, 280, 3));
    let again = draw(&replayed, &mut Ui::default(), 400, 50);
    assert_eq!(
        line_of(&again, "FLOOD"),
        row,
        "the same row from the capture"
    );

    // a minute after it went quiet, the flood's row is gone
    m.frame(T0 + 2 * S + super::model::FLOOD_KEEP_NS);
    assert!(m.floods.is_empty());
}

#[test]
fn a_file_change_shows_under_its_process_live_and_replayed() {
    use crate::files::{Action, FileChange, Watch};
    let s = ssh_session(7, 100);
    let sshd = proc_of(100, 1, &["/usr/sbin/sshd", "-D", "-R"], T0);
    let bash = proc_of(101, 100, &["-bash"], T0 + S);
    let change = FileChange::new(
        Action::Write,
        "/home/x/.ssh/authorized_keys".into(),
        Watch::AuthorizedKeys,
    );
    let records = vec![
        exec(T0, sshd, Some(s.clone())),
        exec(T0 + S, bash.clone(), Some(s.clone())),
        Record {
            time: T0 + 2 * S,
            process: bash,
            session: Some(Box::new(s)),
            what: What::File(Box::new(change)),
        },
    ];
    let mut live = Model::new("vm".into(), T0, S / 2);
    for r in &records {
        live.record(r);
    }
    live.frame(T0 + 3 * S);
    let replayed = replay(&records, "files", T0 + 3 * S);
    let needle = "file_write (authorized_keys) /home/x/.ssh/authorized_keys";
    for m in [&live, &replayed] {
        let screen = text(&draw(m, &mut Ui::default(), 140, 40));
        let at = |n: &str| screen.lines().position(|l| l.contains(n));
        assert!(at(needle).is_some(), "{screen}");
        assert!(at("-bash") < at(needle), "under its process:\n{screen}");
    }
}
