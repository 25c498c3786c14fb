//! The simulated currencies and an HTTPS server of their debtor info documents.
//!
//! The currencies form a peg tree under the base currency (docs/turns.md#pricing): every
//! other currency is pegged to the base or to a currency pegged to it, at a rate that is a
//! power of two or 1.5 times one, so that every price is exact in single precision. Each
//! currency's document is a Swaptacular "CoinInfo" document (docs/messages.md#debtor-info-documents)
//! served at its own locator, `https://127.0.0.1:<port>/currencies/<debtor_id>`, which is also
//! the debtor info IRI its accounts' `AccountUpdate`s name. The server's certificate is
//! self-signed and made at start-up: the workers need `APP_VERIFY_SSL_CERTS=false`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use rand::Rng as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

use crate::debtors::document::COIN_INFO_MEDIA_TYPE;

/// The rates a currency may be pegged at (exact in binary).
const RATES: [f64; 6] = [2.0, 0.5, 1.5, 0.75, 4.0, 0.25];

/// The deepest a currency is in the peg tree (the base is at 0).
const MAX_DEPTH: u32 = 3;

/// One simulated currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Currency {
    pub debtor_id: i64,
    /// The peg: `(index of the peg's currency, exchange rate)`; `None` for the base.
    pub peg: Option<(usize, f64)>,
    /// Its price in base-currency units, as the solver computes it (single precision).
    pub price: f32,
    /// Its distance from the base.
    pub depth: u32,
}

/// The simulated currencies; the first is the base.
#[derive(Debug, Clone, PartialEq)]
pub struct Currencies {
    pub list: Vec<Currency>,
    /// `https://127.0.0.1:<port>`.
    pub origin: String,
}

impl Currencies {
    /// `count` currencies (the base included), debtor IDs `base_debtor_id + i`, pegs drawn
    /// with `seed`.
    ///
    /// # Errors
    ///
    /// When `count` is below 2 or the debtor IDs would overflow.
    pub fn draw(count: usize, base_debtor_id: i64, seed: u64, port: u16) -> anyhow::Result<Self> {
        anyhow::ensure!(
            count >= 2,
            "at least 2 currencies are needed (the base and one more), not {count}"
        );
        anyhow::ensure!(
            base_debtor_id != 0 && base_debtor_id.checked_add(count as i64).is_some(),
            "the debtor IDs {base_debtor_id}..{base_debtor_id}+{count} are not usable"
        );
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6375_7272);
        let mut list: Vec<Currency> = vec![Currency {
            debtor_id: base_debtor_id,
            peg: None,
            price: 1.0,
            depth: 0,
        }];
        for i in 1..count {
            let eligible: Vec<usize> = (0..i).filter(|&p| list[p].depth < MAX_DEPTH).collect();
            let parent = eligible[rng.random_range(0..eligible.len())];
            let rate = RATES[rng.random_range(0..RATES.len())];
            let price = (f64::from(list[parent].price) * f64::from(rate as f32)) as f32;
            list.push(Currency {
                debtor_id: base_debtor_id + i as i64,
                peg: Some((parent, rate)),
                price,
                depth: list[parent].depth + 1,
            });
        }
        Ok(Self {
            list,
            origin: format!("https://127.0.0.1:{port}"),
        })
    }

    /// The base currency.
    pub fn base(&self) -> &Currency {
        &self.list[0]
    }

    /// The locator (and debtor info IRI) of `debtor_id`'s document.
    pub fn locator(&self, debtor_id: i64) -> String {
        format!("{}/currencies/{debtor_id}", self.origin)
    }

    /// The currency of `debtor_id`.
    pub fn get(&self, debtor_id: i64) -> Option<&Currency> {
        let base = self.list[0].debtor_id;
        let i = usize::try_from(debtor_id.checked_sub(base)?).ok()?;
        self.list.get(i)
    }

    /// The highest price.
    pub fn max_price(&self) -> f64 {
        self.list
            .iter()
            .map(|c| f64::from(c.price))
            .fold(0.0, f64::max)
    }

    /// The "CoinInfo" document of `debtor_id`.
    pub fn document(&self, debtor_id: i64) -> Option<String> {
        let currency = self.get(debtor_id)?;
        let mut doc = serde_json::json!({
            "type": "CoinInfo",
            "latestDebtorInfo": {"uri": self.locator(debtor_id)},
            "debtorIdentity": {"type": "DebtorIdentity", "uri": format!("swpt:{}", debtor_id as u64)},
            "summary": "a currency of swpt-trade simulate",
        });
        if let Some((parent, rate)) = currency.peg {
            let peg_id = self.list[parent].debtor_id;
            doc["peg"] = serde_json::json!({
                "type": "Peg",
                "exchangeRate": rate,
                "debtorIdentity": {"type": "DebtorIdentity", "uri": format!("swpt:{}", peg_id as u64)},
                "latestDebtorInfo": {"uri": self.locator(peg_id)},
            });
        }
        Some(doc.to_string())
    }

    /// The debtor info IRI of every currency.
    pub fn iris(&self) -> BTreeMap<i64, String> {
        self.list
            .iter()
            .map(|c| (c.debtor_id, self.locator(c.debtor_id)))
            .collect()
    }
}

/// The running HTTPS server.
pub struct DocumentServer {
    pub port: u16,
    /// Documents served so far.
    pub served: Arc<AtomicU64>,
}

/// Binds `127.0.0.1:port` (0: any free port).
pub async fn bind(port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} for the debtor info documents"))
}

/// Serves `currencies`' documents on `listener` until `stop` is cancelled.
///
/// # Errors
///
/// When the certificate cannot be made.
pub fn serve(
    listener: tokio::net::TcpListener,
    currencies: Arc<Currencies>,
    stop: CancellationToken,
) -> anyhow::Result<DocumentServer> {
    let port = listener.local_addr()?.port();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .context("cannot make a self-signed certificate")?;
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let acceptor = acceptor.clone();
            let currencies = currencies.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
                if let Ok(Ok(tls)) = handshake.await {
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        answer(tls, &currencies, &counter),
                    )
                    .await;
                }
            });
        }
    });
    Ok(DocumentServer { port, served })
}

/// Reads one request and answers it: `GET /currencies/<debtor_id>` gives the document,
/// anything else 404.
async fn answer<S>(mut tls: S, currencies: &Currencies, served: &AtomicU64)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        if request.len() > 16_384 {
            return;
        }
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request);
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default();
    let path = words.next().unwrap_or_default();
    let document = path
        .strip_prefix("/currencies/")
        .and_then(|id| id.parse::<i64>().ok())
        .and_then(|id| currencies.document(id))
        .filter(|_| method == "GET");
    let bytes = match document {
        Some(body) => {
            served.fetch_add(1, Ordering::Relaxed);
            format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: {COIN_INFO_MEDIA_TYPE}\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
        None => {
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".to_owned()
        }
    };
    let _ = tls.write_all(bytes.as_bytes()).await;
    let _ = tls.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debtors::document::parse;

    #[test]
    fn the_peg_tree_prices_every_currency_exactly() {
        let c = Currencies::draw(50, 1000, 7, 4433).unwrap();
        assert_eq!(c.list.len(), 50);
        assert_eq!(c.base().price, 1.0);
        for (i, currency) in c.list.iter().enumerate().skip(1) {
            let (parent, rate) = currency.peg.unwrap();
            assert!(parent < i);
            assert!(currency.depth <= MAX_DEPTH);
            assert_eq!(
                f64::from(currency.price),
                f64::from(c.list[parent].price) * rate
            );
        }
        assert!(Currencies::draw(1, 1000, 7, 4433).is_err());
        assert!(Currencies::draw(3, i64::MAX - 1, 7, 4433).is_err());
    }

    #[test]
    fn documents_are_valid_coin_infos_with_their_pegs() {
        let c = Currencies::draw(5, 1000, 1, 4433).unwrap();
        for currency in &c.list {
            let body = c.document(currency.debtor_id).unwrap();
            let doc = parse(Some(COIN_INFO_MEDIA_TYPE), body.as_bytes()).unwrap();
            assert_eq!(doc.debtor_id, currency.debtor_id);
            assert_eq!(doc.debtor_info_locator, c.locator(currency.debtor_id));
            match currency.peg {
                None => assert!(doc.peg.is_none()),
                Some((parent, rate)) => {
                    let peg = doc.peg.unwrap();
                    assert_eq!(peg.debtor_id, c.list[parent].debtor_id);
                    assert_eq!(peg.exchange_rate, rate);
                    assert_eq!(peg.debtor_info_locator, c.locator(peg.debtor_id));
                }
            }
        }
        assert!(c.document(999).is_none());
        assert!(c.document(1005).is_none());
    }
}
