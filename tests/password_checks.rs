//! Every password check costs one argon2 verification, whoever the username names: an
//! unknown user, a plain-text user and an argon2 user alike, so timing does not tell who
//! exists. Counted through `passwords::checks()`, alone in this binary so nothing else runs
//! argon2 meanwhile.

use oauth_edge::clients::SecretHash;
use oauth_edge::config::UserConfig;
use oauth_edge::passwords;
use oauth_edge::secret::Secret;
use oauth_edge::users::{StaticUsers, UserDirectory};

fn user(name: &str, password: Option<&str>, hash: Option<String>) -> UserConfig {
    UserConfig {
        username: name.into(),
        password: password.map(Secret::new),
        password_hash: hash,
        scopes: None,
    }
}

#[tokio::test]
async fn known_and_unknown_users_cost_one_argon2_check_each() {
    let SecretHash::Argon2(phc) = SecretHash::argon2("hashed-pw") else {
        panic!("argon2() returns an argon2 hash");
    };
    let users = StaticUsers::new(&[
        user("plain", Some("plain-pw"), None),
        user("hashed", None, Some(phc)),
    ]);
    // The decoy hash is made once, on first use; that is not a check.
    let _ = users.authenticate("warm-up", &Secret::new("x")).await;

    for (name, password) in [
        ("nobody", "guess"),
        ("plain", "guess"),
        ("hashed", "guess"),
        ("plain", "plain-pw"),
    ] {
        let (before, _) = passwords::checks();
        let out = users
            .authenticate(name, &Secret::new(password))
            .await
            .unwrap();
        let (after, _) = passwords::checks();
        assert_eq!(after - before, 1, "{name} / {password}: {out:?}");
    }
}
