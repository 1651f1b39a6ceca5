//! The Porter (1980) English stemmer, so that "refunds", "refunded" and "refunding" meet.
//!
//! tantivy's own stemmer sits behind its `stemmer` feature (an extra dependency); this is the
//! classic algorithm on lowercase ASCII words, after Martin Porter's reference implementation.

/// Stems a lowercase ASCII word; other words (and words of one or two letters) come back unchanged.
pub fn porter_stem(word: &str) -> String {
    if word.len() <= 2 || !word.bytes().all(|byte| byte.is_ascii_lowercase()) {
        return word.to_string();
    }
    let mut stemmer = Stemmer {
        buffer: word.as_bytes().to_vec(),
        end: word.len() - 1,
        offset: 0,
    };
    stemmer.step1ab();
    if stemmer.end > 0 {
        stemmer.step1c();
        stemmer.step2();
        stemmer.step3();
        stemmer.step4();
        stemmer.step5();
    }
    stemmer.buffer.truncate(stemmer.end + 1);
    // Only ASCII letters were ever written into the buffer.
    String::from_utf8(stemmer.buffer).unwrap_or_else(|_| word.to_string())
}

/// The word being stemmed: `buffer[..=end]`; `offset` is the `j` of the reference code, the end of
/// the stem before a matched suffix (may be -1).
struct Stemmer {
    buffer: Vec<u8>,
    end: usize,
    offset: isize,
}

impl Stemmer {
    fn is_consonant(&self, index: usize) -> bool {
        match self.buffer[index] {
            b'a' | b'e' | b'i' | b'o' | b'u' => false,
            b'y' => index == 0 || !self.is_consonant(index - 1),
            _ => true,
        }
    }

    /// The number of vowel-consonant sequences in `buffer[..=offset]`.
    fn measure(&self) -> usize {
        let Ok(limit) = usize::try_from(self.offset + 1) else {
            return 0;
        };
        let mut count = 0;
        let mut index = 0;
        while index < limit && self.is_consonant(index) {
            index += 1;
        }
        loop {
            while index < limit && !self.is_consonant(index) {
                index += 1;
            }
            if index >= limit {
                return count;
            }
            while index < limit && self.is_consonant(index) {
                index += 1;
            }
            count += 1;
            if index >= limit {
                return count;
            }
        }
    }

    fn vowel_in_stem(&self) -> bool {
        let Ok(limit) = usize::try_from(self.offset + 1) else {
            return false;
        };
        (0..limit).any(|index| !self.is_consonant(index))
    }

    fn double_consonant(&self, index: usize) -> bool {
        index >= 1 && self.buffer[index] == self.buffer[index - 1] && self.is_consonant(index)
    }

    /// consonant-vowel-consonant ending at `index`, the last not w, x or y.
    fn cvc(&self, index: isize) -> bool {
        let Ok(index) = usize::try_from(index) else {
            return false;
        };
        if index < 2
            || !self.is_consonant(index)
            || self.is_consonant(index - 1)
            || !self.is_consonant(index - 2)
        {
            return false;
        }
        !matches!(self.buffer[index], b'w' | b'x' | b'y')
    }

    fn ends(&mut self, suffix: &str) -> bool {
        let suffix = suffix.as_bytes();
        if suffix.len() > self.end + 1 {
            return false;
        }
        let start = self.end + 1 - suffix.len();
        if &self.buffer[start..=self.end] != suffix {
            return false;
        }
        self.offset = start as isize - 1;
        true
    }

    fn set_to(&mut self, replacement: &str) {
        let start = (self.offset + 1) as usize;
        self.buffer.truncate(start);
        self.buffer.extend_from_slice(replacement.as_bytes());
        self.end = self.buffer.len() - 1;
    }

    fn replace_if_measured(&mut self, replacement: &str) {
        if self.measure() > 0 {
            self.set_to(replacement);
        }
    }

    fn truncate_to_offset(&mut self) {
        self.end = usize::try_from(self.offset).unwrap_or(0);
        self.buffer.truncate(self.end + 1);
    }

    fn step1ab(&mut self) {
        if self.buffer[self.end] == b's' {
            if self.ends("sses") {
                self.end -= 2;
            } else if self.ends("ies") {
                self.set_to("i");
            } else if self.end >= 1 && self.buffer[self.end - 1] != b's' {
                self.end -= 1;
            }
            self.buffer.truncate(self.end + 1);
        }
        if self.ends("eed") {
            if self.measure() > 0 {
                self.end -= 1;
                self.buffer.truncate(self.end + 1);
            }
        } else if (self.ends("ed") || self.ends("ing")) && self.vowel_in_stem() {
            self.truncate_to_offset();
            if self.ends("at") {
                self.set_to("ate");
            } else if self.ends("bl") {
                self.set_to("ble");
            } else if self.ends("iz") {
                self.set_to("ize");
            } else if self.double_consonant(self.end) {
                if !matches!(self.buffer[self.end], b'l' | b's' | b'z') {
                    self.end -= 1;
                    self.buffer.truncate(self.end + 1);
                }
            } else {
                self.offset = self.end as isize;
                if self.measure() == 1 && self.cvc(self.end as isize) {
                    self.set_to_after_end("e");
                }
            }
        }
    }

    fn set_to_after_end(&mut self, suffix: &str) {
        self.buffer.truncate(self.end + 1);
        self.buffer.extend_from_slice(suffix.as_bytes());
        self.end = self.buffer.len() - 1;
    }

    fn step1c(&mut self) {
        if self.ends("y") && self.vowel_in_stem() {
            self.buffer[self.end] = b'i';
        }
    }

    fn apply_rules(&mut self, rules: &[(&str, &str)]) {
        for (suffix, replacement) in rules {
            if self.ends(suffix) {
                self.replace_if_measured(replacement);
                return;
            }
        }
    }

    fn step2(&mut self) {
        if self.end < 1 {
            return;
        }
        let rules: &[(&str, &str)] = match self.buffer[self.end - 1] {
            b'a' => &[("ational", "ate"), ("tional", "tion")],
            b'c' => &[("enci", "ence"), ("anci", "ance")],
            b'e' => &[("izer", "ize")],
            b'l' => &[
                ("bli", "ble"),
                ("alli", "al"),
                ("entli", "ent"),
                ("eli", "e"),
                ("ousli", "ous"),
            ],
            b'o' => &[("ization", "ize"), ("ation", "ate"), ("ator", "ate")],
            b's' => &[
                ("alism", "al"),
                ("iveness", "ive"),
                ("fulness", "ful"),
                ("ousness", "ous"),
            ],
            b't' => &[("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")],
            b'g' => &[("logi", "log")],
            _ => &[],
        };
        self.apply_rules(rules);
    }

    fn step3(&mut self) {
        let rules: &[(&str, &str)] = match self.buffer[self.end] {
            b'e' => &[("icate", "ic"), ("ative", ""), ("alize", "al")],
            b'i' => &[("iciti", "ic")],
            b'l' => &[("ical", "ic"), ("ful", "")],
            b's' => &[("ness", "")],
            _ => &[],
        };
        self.apply_rules(rules);
    }

    fn step4(&mut self) {
        if self.end < 1 {
            return;
        }
        let suffixes: &[&str] = match self.buffer[self.end - 1] {
            b'a' => &["al"],
            b'c' => &["ance", "ence"],
            b'e' => &["er"],
            b'i' => &["ic"],
            b'l' => &["able", "ible"],
            b'n' => &["ant", "ement", "ment", "ent"],
            b'o' => &["ion", "ou"],
            b's' => &["ism"],
            b't' => &["ate", "iti"],
            b'u' => &["ous"],
            b'v' => &["ive"],
            b'z' => &["ize"],
            _ => &[],
        };
        let mut matched = false;
        for suffix in suffixes {
            if self.ends(suffix) {
                matched = if *suffix == "ion" {
                    usize::try_from(self.offset)
                        .is_ok_and(|index| matches!(self.buffer[index], b's' | b't'))
                } else {
                    true
                };
                break;
            }
        }
        if matched && self.measure() > 1 {
            self.truncate_to_offset();
        }
    }

    fn step5(&mut self) {
        self.offset = self.end as isize;
        if self.buffer[self.end] == b'e' {
            let measure = self.measure();
            if measure > 1 || (measure == 1 && !self.cvc(self.end as isize - 1)) {
                self.end -= 1;
                self.buffer.truncate(self.end + 1);
            }
        }
        // The reference code measures up to the removed `e` here; a trailing vowel never
        // changes the measure, so measuring up to the new end is the same.
        self.offset = self.end as isize;
        if self.buffer[self.end] == b'l' && self.double_consonant(self.end) && self.measure() > 1 {
            self.end -= 1;
            self.buffer.truncate(self.end + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::porter_stem;

    #[test]
    fn matches_the_reference_vocabulary() {
        let pairs = [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "ti"),
            ("caress", "caress"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("bled", "bled"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("conflated", "conflat"),
            ("troubled", "troubl"),
            ("sized", "size"),
            ("hopping", "hop"),
            ("tanned", "tan"),
            ("falling", "fall"),
            ("hissing", "hiss"),
            ("fizzed", "fizz"),
            ("failing", "fail"),
            ("filing", "file"),
            ("happy", "happi"),
            ("sky", "sky"),
            ("relational", "relat"),
            ("conditional", "condit"),
            ("rational", "ration"),
            ("valenci", "valenc"),
            ("digitizer", "digit"),
            ("conformabli", "conform"),
            ("radicalli", "radic"),
            ("differentli", "differ"),
            ("vileli", "vile"),
            ("analogousli", "analog"),
            ("vietnamization", "vietnam"),
            ("predication", "predic"),
            ("operator", "oper"),
            ("feudalism", "feudal"),
            ("decisiveness", "decis"),
            ("hopefulness", "hope"),
            ("callousness", "callous"),
            ("formaliti", "formal"),
            ("sensitiviti", "sensit"),
            ("sensibiliti", "sensibl"),
            ("triplicate", "triplic"),
            ("formative", "form"),
            ("formalize", "formal"),
            ("electriciti", "electr"),
            ("electrical", "electr"),
            ("hopeful", "hope"),
            ("goodness", "good"),
            ("revival", "reviv"),
            ("allowance", "allow"),
            ("inference", "infer"),
            ("airliner", "airlin"),
            ("gyroscopic", "gyroscop"),
            ("adjustable", "adjust"),
            ("defensible", "defens"),
            ("irritant", "irrit"),
            ("replacement", "replac"),
            ("adjustment", "adjust"),
            ("dependent", "depend"),
            ("adoption", "adopt"),
            ("homologou", "homolog"),
            ("communism", "commun"),
            ("activate", "activ"),
            ("angulariti", "angular"),
            ("homologous", "homolog"),
            ("effective", "effect"),
            ("bowdlerize", "bowdler"),
            ("probate", "probat"),
            ("rate", "rate"),
            ("cease", "ceas"),
            ("controll", "control"),
            ("roll", "roll"),
            ("refunds", "refund"),
            ("refunded", "refund"),
            ("refunding", "refund"),
            ("deleting", "delet"),
            ("delete", "delet"),
        ];
        for (word, stem) in pairs {
            assert_eq!(porter_stem(word), stem, "{word}");
        }
    }

    #[test]
    fn leaves_short_and_non_ascii_words_alone() {
        assert_eq!(porter_stem("is"), "is");
        assert_eq!(porter_stem("退货"), "退货");
        assert_eq!(porter_stem("iphone15"), "iphone15");
        assert_eq!(porter_stem("café"), "café");
    }
}
