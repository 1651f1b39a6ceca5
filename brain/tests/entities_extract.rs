//! Entity extraction and PII masking, table-driven.

use EntityKind::{
    Address, BankCard, Date, Email, IdCard, Money, OrderNumber, Phone, Sku, TrackingNumber,
};
use crest_brain::entities::{
    Entity, EntityKind, MaskOptions, contains_pii, extract, mask_pii, mask_pii_cow, mask_pii_with,
    parse_chinese_number,
};
use std::borrow::Cow;

type Expected = &'static [(EntityKind, &'static str, &'static str)];

fn check(input: &str, expected: Expected) {
    let found = extract(input);
    for entity in &found {
        assert_eq!(
            &input[entity.start..entity.end],
            entity.text,
            "offsets of {entity:?} in {input:?}"
        );
    }
    let summary: Vec<(EntityKind, &str, &str)> = found
        .iter()
        .map(|entity| (entity.kind, entity.text.as_str(), entity.value.as_str()))
        .collect();
    assert_eq!(summary, expected, "{input:?}");
}

#[test]
fn order_numbers() {
    let cases: &[(&str, Expected)] = &[
        (
            "order #2024112100123",
            &[(OrderNumber, "2024112100123", "2024112100123")],
        ),
        (
            "Order No. 2024112100123 is late",
            &[(OrderNumber, "2024112100123", "2024112100123")],
        ),
        (
            "my order number is 88231771",
            &[(OrderNumber, "88231771", "88231771")],
        ),
        (
            "订单号：2024112100123",
            &[(OrderNumber, "2024112100123", "2024112100123")],
        ),
        (
            "订单号是2024112100123，帮我查下",
            &[(OrderNumber, "2024112100123", "2024112100123")],
        ),
        (
            "ORD-88231 hasn't shipped",
            &[(OrderNumber, "ORD-88231", "ORD-88231")],
        ),
        (
            "please check ord-88231",
            &[(OrderNumber, "ord-88231", "ORD-88231")],
        ),
        (
            "订单 E20241121000456 到哪了",
            &[(OrderNumber, "E20241121000456", "E20241121000456")],
        ),
        (
            "#2026111100001",
            &[(OrderNumber, "2026111100001", "2026111100001")],
        ),
        (
            "2026111100001",
            &[(OrderNumber, "2026111100001", "2026111100001")],
        ),
        (
            "我的订单2026111100001什么时候到",
            &[(OrderNumber, "2026111100001", "2026111100001")],
        ),
        // keyword beats a phone-looking number
        (
            "订单号13812345678",
            &[(OrderNumber, "13812345678", "13812345678")],
        ),
        ("my order hasn't arrived", &[]),
        ("order 123", &[]),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn tracking_numbers() {
    let cases: &[(&str, Expected)] = &[
        (
            "SF1402938475610",
            &[(TrackingNumber, "SF1402938475610", "SF1402938475610")],
        ),
        (
            "顺丰SF1402938475610到哪了",
            &[(TrackingNumber, "SF1402938475610", "SF1402938475610")],
        ),
        (
            "sf 140293847561",
            &[(TrackingNumber, "sf 140293847561", "SF140293847561")],
        ),
        (
            "顺丰单号 1402938475610",
            &[(TrackingNumber, "1402938475610", "1402938475610")],
        ),
        (
            "中通 75312345678901",
            &[(TrackingNumber, "75312345678901", "75312345678901")],
        ),
        (
            "中通快递单号：75312345678901",
            &[(TrackingNumber, "75312345678901", "75312345678901")],
        ),
        (
            "ZTO75312345678901",
            &[(TrackingNumber, "ZTO75312345678901", "ZTO75312345678901")],
        ),
        (
            "YT7512345678901",
            &[(TrackingNumber, "YT7512345678901", "YT7512345678901")],
        ),
        (
            "京东 JDV012345678901",
            &[(TrackingNumber, "JDV012345678901", "JDV012345678901")],
        ),
        (
            "jdv012345678901",
            &[(TrackingNumber, "jdv012345678901", "JDV012345678901")],
        ),
        (
            "EMS EA123456789CN",
            &[(TrackingNumber, "EA123456789CN", "EA123456789CN")],
        ),
        (
            "EMS 1123456789012",
            &[(TrackingNumber, "1123456789012", "1123456789012")],
        ),
        (
            "tracking number XYZ12345678",
            &[(TrackingNumber, "XYZ12345678", "XYZ12345678")],
        ),
        (
            "my tracking # is 1Z999AA10123456784",
            &[(TrackingNumber, "1Z999AA10123456784", "1Z999AA10123456784")],
        ),
        (
            "运单号：DPK364051234567",
            &[(TrackingNumber, "DPK364051234567", "DPK364051234567")],
        ),
        // a tracking number is not also a phone
        (
            "SF13812345678901",
            &[(TrackingNumber, "SF13812345678901", "SF13812345678901")],
        ),
        ("tracking is slow", &[]),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn phones_and_emails() {
    let cases: &[(&str, Expected)] = &[
        ("13812345678", &[(Phone, "13812345678", "13812345678")]),
        (
            "电话138 1234 5678",
            &[(Phone, "138 1234 5678", "13812345678")],
        ),
        (
            "+86 138-1234-5678",
            &[(Phone, "+86 138-1234-5678", "13812345678")],
        ),
        (
            "+8613812345678",
            &[(Phone, "+8613812345678", "13812345678")],
        ),
        (
            "call +1 555 123 4567",
            &[(Phone, "+1 555 123 4567", "+15551234567")],
        ),
        (
            "call +1 (555) 123-4567 now",
            &[(Phone, "+1 (555) 123-4567", "+15551234567")],
        ),
        ("(555) 123-4567", &[(Phone, "(555) 123-4567", "5551234567")]),
        (
            "座机010-12345678",
            &[(Phone, "010-12345678", "010-12345678")],
        ),
        // not a mobile prefix: a bare long number is taken for an order number
        (
            "12812345678",
            &[(OrderNumber, "12812345678", "12812345678")],
        ),
        ("x13812345678", &[]),
        (
            "mail Alice.W@Shop.com please",
            &[(Email, "Alice.W@Shop.com", "alice.w@shop.com")],
        ),
        (
            "邮箱13812345678@qq.com",
            &[(Email, "13812345678@qq.com", "13812345678@qq.com")],
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn money() {
    let cases: &[(&str, Expected)] = &[
        ("¥199", &[(Money, "¥199", "CNY 199.00")]),
        ("退我199元", &[(Money, "199元", "CNY 199.00")]),
        ("￥1,299.00", &[(Money, "￥1,299.00", "CNY 1299.00")]),
        ("$25.99", &[(Money, "$25.99", "USD 25.99")]),
        ("it cost 25 dollars", &[(Money, "25 dollars", "USD 25.00")]),
        ("RMB 50", &[(Money, "RMB 50", "CNY 50.00")]),
        ("三百元", &[(Money, "三百元", "CNY 300.00")]),
        (
            "一千二百五十块",
            &[(Money, "一千二百五十块", "CNY 1250.00")],
        ),
        ("便宜了50块吧", &[(Money, "50块", "CNY 50.00")]),
        ("US$9.5", &[(Money, "US$9.5", "USD 9.50")]),
        // 块 as a measure word is not money
        ("买了3块蛋糕", &[]),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn dates() {
    let cases: &[(&str, Expected)] = &[
        ("2026-11-11", &[(Date, "2026-11-11", "2026-11-11")]),
        ("2026/11/1", &[(Date, "2026/11/1", "2026-11-01")]),
        ("11月11日发货", &[(Date, "11月11日", "--11-11")]),
        ("2026年11月11日", &[(Date, "2026年11月11日", "2026-11-11")]),
        ("十一月十一日", &[(Date, "十一月十一日", "--11-11")]),
        ("双十一买的", &[(Date, "双十一", "--11-11")]),
        ("618大促", &[(Date, "618", "--06-18")]),
        ("ordered on 11/11", &[(Date, "11/11", "--11-11")]),
        ("25/12/2026", &[(Date, "25/12/2026", "2026-12-25")]),
        ("Nov 11", &[(Date, "Nov 11", "--11-11")]),
        (
            "November 11th, 2026",
            &[(Date, "November 11th, 2026", "2026-11-11")],
        ),
        ("11 Nov", &[(Date, "11 Nov", "--11-11")]),
        ("arrives tomorrow", &[(Date, "tomorrow", "tomorrow")]),
        ("Next  Monday", &[(Date, "Next  Monday", "next monday")]),
        ("明天能到吗", &[(Date, "明天", "明天")]),
        ("大后天", &[(Date, "大后天", "大后天")]),
        ("13/13", &[]),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn skus() {
    let cases: &[(&str, Expected)] = &[
        ("SKU1001 还有货吗", &[(Sku, "SKU1001", "SKU1001")]),
        ("sku 1002 in stock?", &[(Sku, "sku 1002", "SKU1002")]),
        ("货号：AB-1003", &[(Sku, "AB-1003", "AB-1003")]),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn full_width_digits_keep_original_offsets() {
    let input = "订单号：２０２６１１１１００００１，电话１３８ １２３４ ５６７８，付了￥１９９";
    check(
        input,
        &[
            (OrderNumber, "２０２６１１１１００００１", "2026111100001"),
            (Phone, "１３８ １２３４ ５６７８", "13812345678"),
            (Money, "￥１９９", "CNY 199.00"),
        ],
    );
}

#[test]
fn mixed_message_in_order_without_overlaps() {
    let input = "Hi, order #2026111100005 (SF1402938475610) cost ¥875, call 13812345678 or a@b.cn before Nov 12";
    let found: Vec<Entity> = extract(input);
    let kinds: Vec<EntityKind> = found.iter().map(|entity| entity.kind).collect();
    assert_eq!(
        kinds,
        vec![OrderNumber, TrackingNumber, Money, Phone, Email, Date]
    );
    for pair in found.windows(2) {
        assert!(pair[0].end <= pair[1].start, "{pair:?}");
    }
}

#[test]
fn extract_handles_empty_and_odd_input() {
    assert!(extract("").is_empty());
    assert!(extract("你好").is_empty());
    let long_digits = "1".repeat(4000);
    assert!(extract(&long_digits).is_empty());
    let emoji = "😡😡 13812345678 😡";
    check(emoji, &[(Phone, "13812345678", "13812345678")]);
}

#[test]
fn masking() {
    let cases = [
        ("我的电话13812345678", "我的电话138****5678"),
        ("call +86 138-1234-5678 now", "call 138****5678 now"),
        ("mail alice@shop.com", "mail a***@shop.com"),
        ("手机１３８１２３４５６７８", "手机138****5678"),
        ("order 2026111100001", "order 2026111100001"),
        ("no pii here", "no pii here"),
    ];
    for (input, expected) in cases {
        assert_eq!(mask_pii(input), expected, "{input:?}");
    }
    let with_orders = MaskOptions {
        order_numbers: true,
        ..MaskOptions::default()
    };
    assert_eq!(
        mask_pii_with("订单2026111100001，邮箱bob@x.com", &with_orders),
        "订单2026*****0001，邮箱b***@x.com"
    );
}

#[test]
fn identity_cards_need_a_valid_date_and_check_character() {
    let cases: &[(&str, Expected)] = &[
        (
            "身份证号11010519491231002X",
            &[(IdCard, "11010519491231002X", "11010519491231002X")],
        ),
        (
            "id 440304199003071248 ok",
            &[(IdCard, "440304199003071248", "440304199003071248")],
        ),
        (
            "lower-case x: 11010519491231002x",
            &[(IdCard, "11010519491231002x", "11010519491231002X")],
        ),
        // Wrong check character: an ordinary long number (a bare order number).
        (
            "440304199003071235",
            &[(OrderNumber, "440304199003071235", "440304199003071235")],
        ),
        // Month 13 is no date.
        (
            "110105194913310021",
            &[(OrderNumber, "110105194913310021", "110105194913310021")],
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn bank_cards_are_luhn_checked() {
    let cases: &[(&str, Expected)] = &[
        (
            "卡号：6222021234567890128",
            &[(BankCard, "6222021234567890128", "6222021234567890128")],
        ),
        (
            "card 4111 1111 1111 1111 please",
            &[(BankCard, "4111 1111 1111 1111", "4111111111111111")],
        ),
        (
            "退到6222021234567890128吧",
            &[(BankCard, "6222021234567890128", "6222021234567890128")],
        ),
        // Fails the Luhn check: a bare order number, as before.
        (
            "6222021234567890127",
            &[(OrderNumber, "6222021234567890127", "6222021234567890127")],
        ),
        // A keyword-anchored order number stays an order number.
        (
            "订单号4111111111111111",
            &[(OrderNumber, "4111111111111111", "4111111111111111")],
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn addresses_in_chinese_and_english() {
    let cases: &[(&str, Expected)] = &[
        (
            "寄到北京市朝阳区建国路88号3栋",
            &[(
                Address,
                "北京市朝阳区建国路88号3栋",
                "北京市朝阳区建国路88号3栋",
            )],
        ),
        (
            "收货地址：上海市浦东新区世纪大道100号，谢谢",
            &[(
                Address,
                "上海市浦东新区世纪大道100号",
                "上海市浦东新区世纪大道100号",
            )],
        ),
        (
            "ship to 221 Baker Street tomorrow",
            &[
                (Address, "221 Baker Street", "221 Baker Street"),
                (Date, "tomorrow", "tomorrow"),
            ],
        ),
        // An address keyword followed by no place is no address.
        ("地址填错了怎么办", &[]),
        ("I need to change my address", &[]),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn masking_covers_every_kind_of_personal_data() {
    let cases = [
        ("身份证11010519491231002X", "身份证110***********002X"),
        ("卡号6222021234567890128", "卡号6222***********0128"),
        ("寄到北京市朝阳区建国路88号3栋", "寄到北京市朝阳区****"),
        ("地址：朝阳路8号", "地址：****"),
        ("ship to 221 Baker Street", "ship to ****"),
    ];
    for (input, expected) in cases {
        assert_eq!(mask_pii(input), expected, "{input:?}");
        assert!(contains_pii(input), "{input:?}");
    }
    for clean in ["你好，在吗", "order 2026111100001 shipped?", "地址填错了"] {
        assert!(!contains_pii(clean), "{clean:?}");
        assert!(matches!(mask_pii_cow(clean), Cow::Borrowed(_)), "{clean:?}");
    }
    let without_addresses = MaskOptions {
        addresses: false,
        ..MaskOptions::default()
    };
    assert_eq!(
        mask_pii_with(
            "寄到北京市朝阳区建国路88号，电话13812345678",
            &without_addresses
        ),
        "寄到北京市朝阳区建国路88号，电话138****5678"
    );
}

#[test]
fn chinese_numbers_are_public() {
    assert_eq!(parse_chinese_number("两万五"), Some(25_000));
}
