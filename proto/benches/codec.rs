//! Codec throughput: encoding and decoding whole envelopes of typical conversation events.
//!
//! * `encode`: payload encoding plus [`Envelope::to_bytes`], what the journal writer does per event.
//! * `decode`: [`Envelope::from_bytes`] plus [`Envelope::decode_event`], what a replay does.
//!
//! Throughput is reported in bytes of the encoded envelope. The defaults keep a run short
//! (10 samples, 2 s measurement); command-line options such as `--quick` or `--measurement-time`
//! still override them: `cargo bench -p crest-proto --bench codec -- --quick`.

use std::error::Error;
use std::hint::black_box;
use std::time::Duration;

use crest_proto::codec::CODEC_BINCODE_V1;
use crest_proto::envelope::EventMeta;
use crest_proto::events::{
    BotReplied, Citation, ConversationEvent, CustomerMessageReceived, DomainEvent, Emotion,
};
use crest_proto::{ConversationId, Envelope, MessageId, StreamId, TenantId};
use criterion::{Criterion, Throughput};

/// The tenant and conversation stream shared by the fixtures.
struct Ids {
    tenant: TenantId,
    stream: StreamId,
}

impl Ids {
    fn new() -> Result<Self, Box<dyn Error>> {
        let tenant = TenantId::new("acme")?;
        let conversation =
            ConversationId::from_parts(tenant.clone(), 0x0193_4E97_EE00_5EED_0000_0000_0000_C0DE);
        Ok(Self {
            stream: StreamId::conversation(&conversation),
            tenant,
        })
    }

    fn message(&self, n: u128) -> MessageId {
        MessageId::from_parts(
            self.tenant.clone(),
            0x0193_4E97_EE00_BEEF_0000_0000_0000_0000 + n,
        )
    }
}

/// A customer message as it typically arrives from the web widget.
fn customer_message_received(ids: &Ids) -> ConversationEvent {
    ConversationEvent::CustomerMessageReceived(CustomerMessageReceived {
        message: ids.message(1),
        channel: "web".to_owned(),
        channel_message_id: "m-8c1f2a".to_owned(),
        text: "你好，我的订单 #A1024 还没有发货，能帮我查一下吗？".to_owned(),
    })
}

/// A bot answer grounded in two knowledge-base passages.
fn bot_replied(ids: &Ids) -> ConversationEvent {
    ConversationEvent::BotReplied(BotReplied {
        message: ids.message(2),
        in_reply_to: ids.message(1),
        text: "您的订单 #A1024 已于今天上午出库，预计 2 天内送达。物流单号会通过短信发送给您。"
            .to_owned(),
        intent: Some("order_status".to_owned()),
        confidence: 0.92,
        emotion: Some(Emotion {
            label: "anxiety".to_owned(),
            score: 0.61,
        }),
        citations: vec![
            Citation {
                document_id: "kb-shipping-001".to_owned(),
                title: "发货与配送时效".to_owned(),
                version: 3,
                start: 120,
                end: 348,
            },
            Citation {
                document_id: "kb-orders-017".to_owned(),
                title: "订单查询与物流跟踪".to_owned(),
                version: 12,
                start: 0,
                end: 96,
            },
        ],
    })
}

/// The envelope the journal would store for `event` (fixed id and time, so runs are comparable).
fn envelope(event: &ConversationEvent, stream: StreamId) -> Result<Envelope, Box<dyn Error>> {
    Ok(Envelope {
        codec: CODEC_BINCODE_V1,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        stream,
        seq: 42,
        timestamp_ms: 1_732_190_400_000,
        event_id: 0x0193_4E97_EE00_E7E7_0000_0000_0000_002A,
        meta: EventMeta {
            causation_id: Some("01JD79E0X0BVPG00000000000Z".to_owned()),
            correlation_id: Some("req-7f3a9c2d".to_owned()),
            idempotency_key: Some("web:m-8c1f2a".to_owned()),
        },
        payload: event.encode_payload()?,
    })
}

/// Benchmarks encoding and decoding of one event's envelope in a group named `name`.
fn bench_event(
    criterion: &mut Criterion,
    name: &str,
    event: &ConversationEvent,
    stream: StreamId,
) -> Result<(), Box<dyn Error>> {
    let template = envelope(event, stream)?;
    let bytes = template.to_bytes()?;
    // Check the round trip once, so the timed loops below cannot be measuring an error path.
    let decoded: ConversationEvent = Envelope::from_bytes(&bytes)?.decode_event()?;
    if decoded != *event {
        return Err(format!("{name}: envelope does not round-trip").into());
    }
    eprintln!("{name}: envelope is {} bytes", bytes.len());

    let mut group = criterion.benchmark_group(name);
    group.throughput(Throughput::Bytes(u64::try_from(bytes.len())?));
    let mut envelope = template;
    group.bench_function("encode", |bencher| {
        bencher.iter(|| {
            let event = black_box(event);
            envelope.payload = event.encode_payload()?;
            black_box(&envelope).to_bytes()
        });
    });
    group.bench_function("decode", |bencher| {
        bencher
            .iter(|| Envelope::from_bytes(black_box(&bytes))?.decode_event::<ConversationEvent>());
    });
    group.finish();
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let ids = Ids::new()?;
    bench_event(
        &mut criterion,
        "envelope/customer_message_received",
        &customer_message_received(&ids),
        ids.stream.clone(),
    )?;
    bench_event(
        &mut criterion,
        "envelope/bot_replied_2_citations",
        &bot_replied(&ids),
        ids.stream.clone(),
    )?;
    criterion.final_summary();
    Ok(())
}
