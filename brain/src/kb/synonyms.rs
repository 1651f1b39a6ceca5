//! A small built-in list of general English help-desk synonyms, used to widen queries
//! ("remove my pic" also looks for "delete" and "photo"). Only general vocabulary of web and
//! account support belongs here, never wording of one knowledge base.

use std::sync::LazyLock;

use super::stem::porter_stem;

/// Groups of interchangeable words (any member stands for the others).
const GROUPS: &[&[&str]] = &[
    &["delete", "remove", "erase"],
    &["picture", "photo", "image", "pic", "photograph"],
    &["password", "pw", "passcode", "passwd"],
    &["facebook", "fb"],
    &["email", "mail"],
    &["change", "modify", "edit", "alter"],
    &["see", "view"],
    &["hide", "conceal"],
    &["message", "msg"],
    &["disable", "deactivate"],
    &["enable", "activate"],
    &["stop", "prevent", "block"],
    &["find", "search", "locate", "look"],
    &["notification", "alert"],
    &["link", "url"],
    &["recover", "restore", "retrieve"],
    &["cancel", "unsubscribe"],
    &["phone", "mobile", "cellphone"],
    &["app", "application"],
    &["pc", "computer"],
    &["undo", "revert"],
    &["add", "insert"],
    &["video", "clip"],
    &["download", "save"],
    &["get", "obtain"],
    &["create", "make"],
    &["login", "signin"],
    &["logout", "signout"],
];

static STEMMED: LazyLock<Vec<Vec<String>>> = LazyLock::new(|| {
    GROUPS
        .iter()
        .map(|group| group.iter().map(|word| porter_stem(word)).collect())
        .collect()
});

/// The other members of the groups holding `term` (analysed alike: stemmed or not).
pub(crate) fn synonyms_of(term: &str, stemmed: bool) -> Vec<String> {
    let mut found = Vec::new();
    if stemmed {
        for group in STEMMED.iter() {
            if group.iter().any(|member| member == term) {
                found.extend(group.iter().filter(|member| *member != term).cloned());
            }
        }
    } else {
        for group in GROUPS {
            if group.contains(&term) {
                found.extend(
                    group
                        .iter()
                        .filter(|member| **member != term)
                        .map(|member| (*member).to_string()),
                );
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_are_symmetric_and_stemmed() {
        assert!(synonyms_of(&porter_stem("removing"), true).contains(&porter_stem("delete")));
        assert!(synonyms_of("pic", false).contains(&"photo".to_string()));
        assert!(synonyms_of("sofa", false).is_empty());
    }
}
