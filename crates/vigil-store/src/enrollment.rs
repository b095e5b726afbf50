//! Enrollment tokens and the certificates a hub issued to its children
//! (docs/ARCHITECTURE.md#certificate-authority-and-enrollment; schema version 7).
//!
//! The store keeps the rows; the hub owns the CA, the token format and the policy. What the
//! store guarantees:
//!
//! - **a token works once**: [`Store::enrollment_redeem`] checks the token (known, right
//!   secret, unused, unexpired), lets the caller issue the certificate, and marks the token
//!   used, records the certificate and appends the audit record **in one transaction** — a
//!   crash or a failed issue leaves the token usable and nothing recorded; two redeems of
//!   one token cannot both succeed (the write lock is taken before the check);
//! - **no usable secret at rest**: a token's secret arrives here as its SHA-256;
//! - **a node is bound to the token's site**: the certificate is recorded with it and the
//!   node's enrolled binding ([`crate::bindings`]) is set in the same transaction;
//! - **revocations are durable and audited** with the change ([`Store::certificates_revoke`]),
//!   and [`Store::revoked_certificates`] is what a running hub's gate and an external
//!   broker's CRL are built from.

use rusqlite::{params, OptionalExtension, Row, Transaction};
use vigil_core::Timestamp;

use crate::audit::{self, AuditEntry, AuditRecord};
use crate::error::{SqlContext, StoreError};
use crate::store::Store;

/// A token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnrollmentToken {
    /// The token's id (its public part).
    pub id: [u8; 8],
    /// SHA-256 of its secret.
    pub secret_hash: [u8; 32],
    /// The only node it enrolls.
    pub node: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Who made it (`cli:root`, a user name).
    pub created_by: String,
    /// The site subtree the node is bound to (`--site`): stored with the certificate and
    /// as the node's binding when the token is redeemed ([`crate::bindings`]).
    pub site: String,
    /// The kind of node it enrolls (`--kind`, schema 13): a request of another kind is
    /// refused, so a node does not choose its own.
    pub kind: crate::NodeKind,
}

/// A stored token (its secret is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentToken {
    /// Its id.
    pub id: [u8; 8],
    /// The node it enrolls.
    pub node: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// When it was used, if it was.
    pub used_at: Option<Timestamp>,
    /// Who used it (the client's address), if it was.
    pub used_by: Option<String>,
    /// The site subtree it binds its node to (`None`: a token from before bindings).
    pub site: Option<String>,
    /// The kind of node it enrolls (a token from before kinds: a gateway).
    pub kind: crate::NodeKind,
}

/// A certificate issued to a node, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertificate {
    /// Its serial, lowercase hex without leading zeros.
    pub serial: String,
    /// The node it names.
    pub node: String,
    /// Valid from.
    pub not_before: Timestamp,
    /// Valid until.
    pub not_after: Timestamp,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// SHA-256 of its DER, lowercase hex.
    pub fingerprint: String,
    /// The site subtree its node is bound to (the token's `--site`); `None` for a
    /// certificate issued without a token.
    pub site: Option<String>,
    /// What the node is: its token's kind, which its request named too.
    pub kind: crate::NodeKind,
}

/// A recorded certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCertificate {
    /// Its serial.
    pub serial: String,
    /// The node it names.
    pub node: String,
    /// Valid from.
    pub not_before: Timestamp,
    /// Valid until.
    pub not_after: Timestamp,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// SHA-256 of its DER, hex.
    pub fingerprint: String,
    /// The token it was exchanged for.
    pub token_id: Option<Vec<u8>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// The site subtree its node was bound to when it was issued.
    pub site: Option<String>,
    /// What the node said it is when it enrolled (`None`: issued before kinds).
    pub kind: Option<crate::NodeKind>,
}

/// A revoked serial and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// The serial.
    pub serial: String,
    /// When it was revoked.
    pub revoked_at: Timestamp,
}

/// Why a token was not accepted. The hub answers every one with the same message; the
/// audit log and the metrics tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No token has that id.
    Unknown,
    /// The id is known but the secret is not its secret.
    WrongSecret,
    /// It was used already.
    Used,
    /// It has expired.
    Expired,
}

impl TokenRefusal {
    /// `unknown`, `wrong_secret`, `used`, `expired`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenRefusal::Unknown => "unknown",
            TokenRefusal::WrongSecret => "wrong_secret",
            TokenRefusal::Used => "used",
            TokenRefusal::Expired => "expired",
        }
    }
}

/// A successful redeem.
#[derive(Debug, Clone, PartialEq)]
pub struct Redeemed<T> {
    /// The token, now used.
    pub token: EnrollmentToken,
    /// What the issuer returned besides the certificate's record.
    pub issued: T,
    /// The enrollment's audit record.
    pub record: AuditRecord,
}

/// Why a redeem did not happen; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError<E> {
    /// The token is not usable.
    #[error("enrollment token refused: {}", reason.as_str())]
    Refused {
        /// Why.
        reason: TokenRefusal,
        /// The node the token was for, when the id is known.
        node: Option<String>,
    },
    /// The issuer failed (a malformed CSR): the token stays usable.
    #[error("the certificate was not issued")]
    Issue(E),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a revocation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// No recorded certificate matches.
    #[error("no certificate of node {node:?}{}", serial.as_ref().map(|s| format!(" with serial {s}")).unwrap_or_default())]
    NoCertificate {
        /// The node asked for.
        node: String,
        /// The serial asked for.
        serial: Option<String>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const TOKEN_COLUMNS: &str =
    "id, node, created_at, expires_at, created_by, used_at, used_by, site, kind";
const CERT_COLUMNS: &str = "serial, node, not_before, not_after, issued_at, fingerprint, \
     token_id, revoked_at, revoked_by, site, kind";

fn time(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(i)?.map(Timestamp::from_millis))
}

fn token_row(row: &Row<'_>) -> rusqlite::Result<(Vec<u8>, EnrollmentToken)> {
    let id: Vec<u8> = row.get(0)?;
    let mut fixed = [0u8; 8];
    if id.len() == 8 {
        fixed.copy_from_slice(&id);
    }
    Ok((
        id,
        EnrollmentToken {
            id: fixed,
            node: row.get(1)?,
            created_at: Timestamp::from_millis(row.get(2)?),
            expires_at: Timestamp::from_millis(row.get(3)?),
            created_by: row.get(4)?,
            used_at: time(row, 5)?,
            used_by: row.get(6)?,
            site: row.get(7)?,
            kind: crate::NodeKind::parse(&row.get::<_, String>(8)?).unwrap_or_default(),
        },
    ))
}

fn cert_row(row: &Row<'_>) -> rusqlite::Result<NodeCertificate> {
    Ok(NodeCertificate {
        serial: row.get(0)?,
        node: row.get(1)?,
        not_before: Timestamp::from_millis(row.get(2)?),
        not_after: Timestamp::from_millis(row.get(3)?),
        issued_at: Timestamp::from_millis(row.get(4)?),
        fingerprint: row.get(5)?,
        token_id: row.get(6)?,
        revoked_at: time(row, 7)?,
        revoked_by: row.get(8)?,
        site: row.get(9)?,
        kind: row
            .get::<_, Option<String>>(10)?
            .and_then(|k| crate::NodeKind::parse(&k)),
    })
}

/// Equal without an early exit (the time does not tell how much of a guess was right).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn insert_certificate(
    tx: &Transaction<'_>,
    cert: &NewCertificate,
    token_id: Option<&[u8]>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO node_certificates
             (serial, node, not_before, not_after, issued_at, fingerprint, token_id, site, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            cert.serial,
            cert.node,
            cert.not_before.as_millis(),
            cert.not_after.as_millis(),
            cert.issued_at.as_millis(),
            cert.fingerprint,
            token_id,
            cert.site,
            cert.kind.as_str(),
        ],
    )
    .op("record a node certificate")?;
    if let Some(site) = &cert.site {
        crate::bindings::set_enrolled_in(tx, &cert.node, site, cert.kind, cert.issued_at)?;
    }
    Ok(())
}

/// Revokes `node`'s certificate `serial` (or all of them) on `tx`: the serials newly
/// revoked; `None` when no certificate matches.
pub(crate) fn revoke_in(
    tx: &Transaction<'_>,
    node: &str,
    serial: Option<&str>,
    at: Timestamp,
    by: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let matching: Vec<(String, bool)> = tx
        .prepare(
            "SELECT serial, revoked_at IS NOT NULL FROM node_certificates
             WHERE node = ?1 AND (?2 IS NULL OR serial = ?2) ORDER BY issued_at, serial",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![node, serial], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .op("find the certificates to revoke")?;
    if matching.is_empty() {
        return Ok(None);
    }
    let fresh: Vec<String> = matching
        .into_iter()
        .filter(|(_, revoked)| !revoked)
        .map(|(s, _)| s)
        .collect();
    for s in &fresh {
        tx.execute(
            "UPDATE node_certificates SET revoked_at = ?2, revoked_by = ?3 WHERE serial = ?1",
            params![s, at.as_millis(), by],
        )
        .op("revoke a certificate")?;
    }
    Ok(Some(fresh))
}

impl Store {
    /// Stores a new token with its audit record, in one transaction.
    pub fn enrollment_token_add(
        &mut self,
        token: &NewEnrollmentToken,
        audit: &AuditEntry,
    ) -> Result<AuditRecord, StoreError> {
        let tx = self.write_tx("begin adding an enrollment token")?;
        tx.execute(
            "INSERT INTO enrollment_tokens
                 (id, secret_hash, node, created_at, expires_at, created_by, site, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                &token.id[..],
                &token.secret_hash[..],
                token.node,
                token.created_at.as_millis(),
                token.expires_at.as_millis(),
                token.created_by,
                token.site,
                token.kind.as_str(),
            ],
        )
        .op("add an enrollment token")?;
        let record = audit::append_in(&tx, audit)?;
        tx.commit().op("commit adding an enrollment token")?;
        Ok(record)
    }

    /// Every token, newest first.
    pub fn enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>, StoreError> {
        self.conn
            .prepare(&format!(
                "SELECT {TOKEN_COLUMNS} FROM enrollment_tokens ORDER BY created_at DESC, id"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([], |row| token_row(row).map(|(_, t)| t))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .op("list enrollment tokens")
    }

    /// Redeems the token `id` whose secret hashes to `secret_hash`, at `now`, for the client
    /// `used_by`: checks it, then calls `issue` with it (to sign the certificate for its
    /// node), then marks it used, records the certificate and appends the audit record the
    /// issuer returned — all in one transaction. A refusal or an issue error changes
    /// nothing (the caller audits refusals on its own).
    pub fn enrollment_redeem<T, E>(
        &mut self,
        id: &[u8; 8],
        secret_hash: &[u8; 32],
        now: Timestamp,
        used_by: &str,
        issue: impl FnOnce(&EnrollmentToken) -> Result<(T, NewCertificate, AuditEntry), E>,
    ) -> Result<Redeemed<T>, RedeemError<E>> {
        let tx = self.write_tx("begin an enrollment")?;
        let found: Option<(Vec<u8>, EnrollmentToken, Vec<u8>)> = tx
            .query_row(
                &format!(
                    "SELECT {TOKEN_COLUMNS}, secret_hash FROM enrollment_tokens WHERE id = ?1"
                ),
                [&id[..]],
                |row| {
                    let (raw, token) = token_row(row)?;
                    Ok((raw, token, row.get(9)?))
                },
            )
            .optional()
            .op("look up an enrollment token")?;
        let Some((raw_id, mut token, stored_hash)) = found else {
            return Err(RedeemError::Refused {
                reason: TokenRefusal::Unknown,
                node: None,
            });
        };
        let refuse = |reason| RedeemError::Refused {
            reason,
            node: Some(token.node.clone()),
        };
        if !same(&stored_hash, secret_hash) {
            return Err(refuse(TokenRefusal::WrongSecret));
        }
        if token.used_at.is_some() {
            return Err(refuse(TokenRefusal::Used));
        }
        if now >= token.expires_at {
            return Err(refuse(TokenRefusal::Expired));
        }
        let (issued, cert, entry) = issue(&token).map_err(RedeemError::Issue)?;
        tx.execute(
            "UPDATE enrollment_tokens SET used_at = ?2, used_by = ?3 WHERE id = ?1",
            params![&raw_id[..], now.as_millis(), used_by],
        )
        .op("mark an enrollment token used")?;
        insert_certificate(&tx, &cert, Some(&raw_id))?;
        let record = audit::append_in(&tx, &entry)?;
        tx.commit().op("commit an enrollment")?;
        token.used_at = Some(now);
        token.used_by = Some(used_by.to_owned());
        Ok(Redeemed {
            token,
            issued,
            record,
        })
    }

    /// Records a certificate issued without a token (a hub's own client certificate), with
    /// an audit record if given, in one transaction.
    pub fn certificate_record(
        &mut self,
        cert: &NewCertificate,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx("begin recording a certificate")?;
        insert_certificate(&tx, cert, None)?;
        if let Some(entry) = audit {
            audit::append_in(&tx, entry)?;
        }
        tx.commit().op("commit recording a certificate")
    }

    /// The certificates issued to `node`, oldest first.
    pub fn node_certificates(&self, node: &str) -> Result<Vec<NodeCertificate>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {CERT_COLUMNS} FROM node_certificates WHERE node = ?1
                 ORDER BY issued_at, serial"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([node], cert_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .op("list a node's certificates")
    }

    /// Every node this hub issued a certificate to, by id.
    pub fn certified_nodes(&self) -> Result<Vec<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT DISTINCT node FROM node_certificates ORDER BY node")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .op("list the certified nodes")
    }

    /// Revokes `node`'s certificate `serial`, or every certificate of `node` without one,
    /// at `at` by `by`, with the audit record `audit` makes from the serials newly revoked,
    /// in one transaction. Returns those serials (empty when all were revoked already; the
    /// audit record is written all the same). No matching certificate:
    /// [`RevokeError::NoCertificate`], nothing written.
    pub fn certificates_revoke(
        &mut self,
        node: &str,
        serial: Option<&str>,
        at: Timestamp,
        by: &str,
        audit: impl FnOnce(&[String]) -> AuditEntry,
    ) -> Result<Vec<String>, RevokeError> {
        let tx = self.write_tx("begin a revocation")?;
        let fresh =
            revoke_in(&tx, node, serial, at, by)?.ok_or_else(|| RevokeError::NoCertificate {
                node: node.to_owned(),
                serial: serial.map(str::to_owned),
            })?;
        audit::append_in(&tx, &audit(&fresh))?;
        tx.commit().op("commit a revocation")?;
        Ok(fresh)
    }

    /// Every revoked certificate, in the order of revocation.
    pub fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT serial, revoked_at FROM node_certificates
                 WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok(RevokedCertificate {
                        serial: row.get(0)?,
                        revoked_at: Timestamp::from_millis(row.get(1)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .op("list revoked certificates")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            at: Timestamp::from_millis(1),
            node: "county".into(),
            actor: "cli:root".into(),
            action: action.into(),
            target: "gw-1".into(),
            details: serde_json::json!({}),
        }
    }

    fn token(id: u8, node: &str, expires: i64) -> NewEnrollmentToken {
        NewEnrollmentToken {
            id: [id; 8],
            secret_hash: [id; 32],
            node: node.into(),
            created_at: Timestamp::from_millis(0),
            expires_at: Timestamp::from_millis(expires),
            created_by: "cli:root".into(),
            site: "m/p/c/k/f1".into(),
            kind: crate::NodeKind::Gateway,
        }
    }

    fn cert(serial: &str, node: &str) -> NewCertificate {
        NewCertificate {
            serial: serial.into(),
            node: node.into(),
            not_before: Timestamp::from_millis(0),
            not_after: Timestamp::from_millis(10),
            issued_at: Timestamp::from_millis(5),
            fingerprint: "ff".into(),
            site: None,
            kind: crate::NodeKind::Gateway,
        }
    }

    type Outcome = Result<Redeemed<()>, RedeemError<&'static str>>;

    fn redeem(store: &mut Store, id: u8, secret: u8, now: i64, serial: &str) -> Outcome {
        let serial = serial.to_owned();
        store.enrollment_redeem(
            &[id; 8],
            &[secret; 32],
            Timestamp::from_millis(now),
            "127.0.0.1",
            move |t| {
                let mut c = cert(&serial, &t.node);
                c.site = t.site.clone();
                Ok(((), c, entry("node.enroll")))
            },
        )
    }

    fn refusal(outcome: Outcome) -> TokenRefusal {
        match outcome {
            Err(RedeemError::Refused { reason, .. }) => reason,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_token_works_once_for_its_node_until_it_expires() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .enrollment_token_add(&token(1, "gw-1", 100), &entry("enroll_token.add"))
            .expect("add");
        store
            .enrollment_token_add(&token(2, "gw-2", 100), &entry("enroll_token.add"))
            .expect("add");
        assert_eq!(
            refusal(redeem(&mut store, 9, 9, 1, "a")),
            TokenRefusal::Unknown
        );
        assert_eq!(
            refusal(redeem(&mut store, 1, 2, 1, "a")),
            TokenRefusal::WrongSecret
        );
        assert_eq!(
            refusal(redeem(&mut store, 2, 2, 100, "a")),
            TokenRefusal::Expired
        );

        // An issue error leaves the token usable and records nothing.
        let failed =
            store.enrollment_redeem(&[1; 8], &[1; 32], Timestamp::from_millis(1), "x", |_| {
                Err::<((), NewCertificate, AuditEntry), _>("bad csr")
            });
        assert!(matches!(failed, Err(RedeemError::Issue("bad csr"))));

        let ok = redeem(&mut store, 1, 1, 1, "a1").expect("redeemed");
        assert_eq!(ok.token.node, "gw-1");
        assert_eq!(ok.token.used_by.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            refusal(redeem(&mut store, 1, 1, 2, "a2")),
            TokenRefusal::Used
        );
        let certs = store.node_certificates("gw-1").expect("certs");
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].token_id.as_deref(), Some(&[1u8; 8][..]));
        // The token's site is the certificate's and the node's binding.
        assert_eq!(certs[0].site.as_deref(), Some("m/p/c/k/f1"));
        let gw1 = vigil_core::NodeId::new("gw-1").expect("id");
        let binding = store.node_binding(&gw1).expect("read").expect("bound");
        assert_eq!(binding.site.as_str(), "m/p/c/k/f1");
        assert_eq!(binding.source, crate::bindings::BindingSource::Enrolled);
        // Two token adds and one enrollment audited.
        assert_eq!(store.audit_head().expect("head").seq, 3);
        let tokens = store.enrollment_tokens().expect("tokens");
        assert_eq!(tokens.len(), 2);
    }

    #[test]
    fn revocation_by_node_or_serial_is_recorded_and_audited() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .certificate_record(&cert("a1", "gw-1"), None)
            .expect("a1");
        store
            .certificate_record(&cert("a2", "gw-1"), None)
            .expect("a2");
        store
            .certificate_record(&cert("b1", "gw-2"), None)
            .expect("b1");
        let at = Timestamp::from_millis(7);
        let revoked = store
            .certificates_revoke("gw-1", Some("a2"), at, "li.na", |_| entry("node.revoke"))
            .expect("revoke");
        assert_eq!(revoked, ["a2"]);
        let revoked = store
            .certificates_revoke("gw-1", None, at, "li.na", |s| {
                assert_eq!(s, ["a1"]);
                entry("node.revoke")
            })
            .expect("revoke all");
        assert_eq!(revoked, ["a1"]);
        let again = store
            .certificates_revoke("gw-1", None, at, "li.na", |_| entry("node.revoke"))
            .expect("again");
        assert!(again.is_empty());
        assert!(matches!(
            store.certificates_revoke("gw-9", None, at, "x", |_| entry("node.revoke")),
            Err(RevokeError::NoCertificate { .. })
        ));
        assert!(matches!(
            store.certificates_revoke("gw-2", Some("a1"), at, "x", |_| entry("node.revoke")),
            Err(RevokeError::NoCertificate { .. })
        ));
        let serials: Vec<String> = store
            .revoked_certificates()
            .expect("revoked")
            .into_iter()
            .map(|r| r.serial)
            .collect();
        assert_eq!(serials, ["a1", "a2"]);
        assert_eq!(store.audit_head().expect("head").seq, 3);
        let certs = store.node_certificates("gw-1").expect("certs");
        assert!(certs
            .iter()
            .all(|c| c.revoked_by.as_deref() == Some("li.na")));
    }
}
