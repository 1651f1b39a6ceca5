//! The journal after `kill -9`: every append acknowledged before the kill is there after reopening.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crest_actors::ports::journal::EventJournal;
use crest_infra::journal::{FjallJournal, FjallJournalConfig};
use crest_proto::StreamId;

#[tokio::test]
async fn acknowledged_appends_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut writer = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args(["journal-writer", "--streams", "20", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("crest journal-writer starts");
    let stdout = writer.stdout.take().expect("stdout piped");
    let mut acked: HashMap<String, u64> = HashMap::new();
    for line in BufReader::new(stdout).lines().take(3_000) {
        let line = line.expect("writer output");
        let mut parts = line.split(' ');
        assert_eq!(parts.next(), Some("acked"), "{line}");
        let stream = parts.next().expect("stream").to_owned();
        let seq: u64 = parts.next().expect("seq").parse().expect("number");
        acked.insert(stream, seq);
    }
    // SIGKILL: no destructor, no flush.
    writer.kill().expect("kill -9");
    writer.wait().expect("reaped");
    assert_eq!(acked.len(), 20);

    let journal = FjallJournal::open(
        dir.path(),
        FjallJournalConfig::default(),
        &prometheus::Registry::new(),
    )
    .expect("journal recovers after an unclean stop");
    for (name, acked_seq) in acked {
        let stream = StreamId::parse(&name).expect("stream name");
        let last = journal.last_seq(&stream).await.expect("last_seq");
        assert!(
            last >= acked_seq,
            "{name}: acknowledged {acked_seq}, found only {last}"
        );
        let events = journal.read(&stream, 0, 10_000).await.expect("read");
        let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "{name}: no gaps");
        for event in events {
            event.envelope().expect("every recovered event decodes");
        }
    }
}
