//! What the simulated services say: per service, a few message templates per level, filled with
//! the variable parts real logs carry (user names, ids, addresses, paths, durations, hosts), and
//! one error template per service that normal traffic never uses (the `new-error` scenario's).
//! Messages are drawn from their own random stream, so the level, status and latency of each
//! log (which detection is calibrated on) are exactly what they were before messages varied.
use rand::RngExt;
use rand::rngs::StdRng;

/// One kind of message: `key` names its template (a label for grouping-accuracy measurements),
/// `weight` its share among its service's messages of that level.
pub struct Kind {
    pub key: &'static str,
    weight: u32,
    render: fn(&mut StdRng) -> String,
}

/// A service's messages by level.
pub struct Catalogue {
    info: &'static [Kind],
    warn: &'static [Kind],
    error: &'static [Kind],
    /// The `new-error` scenario's message.
    pub novel: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
    /// An ERROR from the `new-error` scenario.
    NovelError,
}

impl Catalogue {
    pub fn for_service(service: &str) -> &'static Catalogue {
        match service {
            "auth-service" => &AUTH,
            "feed-service" => &FEED,
            "db-service" => &DB,
            _ => &GENERIC,
        }
    }

    /// A message of this level: (template key, text).
    pub fn message(&self, level: Level, rng: &mut StdRng) -> (&'static str, String) {
        let kinds = match level {
            Level::Info => self.info,
            Level::Warn => self.warn,
            Level::Error => self.error,
            Level::NovelError => return (self.novel.key, (self.novel.render)(rng)),
        };
        let total: u32 = kinds.iter().map(|k| k.weight).sum();
        let mut pick = rng.random_range(0..total);
        let kind = kinds
            .iter()
            .find(|k| {
                let hit = pick < k.weight;
                pick = pick.saturating_sub(k.weight);
                hit
            })
            .expect("weights add up");
        (kind.key, (kind.render)(rng))
    }

    /// Every template key this catalogue can produce in normal traffic.
    pub fn normal_keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.info.iter().chain(self.warn).chain(self.error).map(|k| k.key)
    }
}

// Variable parts, shaped like the real thing.

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin", "zoe", "j.doe", "m.rossi", "k.tanaka",
];

fn user(r: &mut StdRng) -> String {
    if r.random_bool(0.3) { format!("u{}", r.random_range(1000..99_999)) } else { pick(r, USERS).to_string() }
}

fn email(r: &mut StdRng) -> String {
    format!("{}@{}", pick(r, USERS), pick(r, &["example.com", "mail.example.org", "corp.example.net"]))
}

fn ip(r: &mut StdRng) -> String {
    match r.random_range(0..3) {
        0 => format!("10.{}.{}.{}", r.random_range(0..256), r.random_range(0..256), r.random_range(1..255)),
        1 => format!("192.168.{}.{}", r.random_range(0..256), r.random_range(1..255)),
        _ => format!("203.0.113.{}", r.random_range(1..255)),
    }
}

fn hex(r: &mut StdRng, digits: usize) -> String {
    format!("{:016x}", r.random::<u64>())[..digits].to_string()
}

fn uuid(r: &mut StdRng) -> String {
    let (a, b) = (r.random::<u64>(), r.random::<u64>());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        a & 0xffff,
        b >> 52,
        (b >> 36) & 0xffff,
        b & 0xffff_ffff_ffff
    )
}

fn ms(r: &mut StdRng) -> String {
    if r.random_bool(0.5) { r.random_range(1..2000).to_string() } else { format!("{:.1}", r.random_range(0.1..900.0)) }
}

fn host(r: &mut StdRng) -> String {
    match r.random_range(0..3) {
        0 => format!("db-{}.internal", r.random_range(1..9)),
        1 => format!("cache-{}.svc.cluster.local", pick(r, &["a", "b", "c"])),
        _ => format!("ip-10-0-{}-{}.eu-west-1.compute.internal", r.random_range(0..16), r.random_range(1..255)),
    }
}

fn pick<'a>(r: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[r.random_range(0..from.len())]
}

fn n(r: &mut StdRng, max: u32) -> u32 {
    r.random_range(0..max)
}

const TABLES: &[&str] = &["orders", "users", "sessions", "items", "payments"];

macro_rules! kind {
    ($key:literal, $weight:literal, |$r:ident| $body:expr) => {
        Kind { key: $key, weight: $weight, render: |$r: &mut StdRng| $body }
    };
}

static AUTH: Catalogue = Catalogue {
    info: &[
        kind!("auth.login", 40, |r| format!("user {} logged in from {}", user(r), ip(r))),
        kind!("auth.token", 25, |r| format!(
            "issued token {} for user {} (expires in {}s)",
            hex(r, 12),
            user(r),
            pick(r, &["900", "3600", "86400"])
        )),
        kind!("auth.refresh", 20, |r| format!("session {} refreshed for {}", uuid(r), email(r))),
        kind!("auth.check", 15, |r| format!("password check ok for user {} in {} ms", user(r), ms(r))),
    ],
    warn: &[
        kind!("auth.badpass", 50, |r| format!("login failed for user {} from {}: bad password", user(r), ip(r))),
        kind!("auth.ratelimit", 30, |r| format!("rate limit hit for {}: {} attempts in 60s", ip(r), 10 + n(r, 90))),
        kind!("auth.expired", 20, |r| format!("token {} expired {}s ago", hex(r, 12), n(r, 5000))),
    ],
    error: &[
        kind!("auth.ldap", 60, |r| format!(
            "upstream call failed: ldap://{}:389 timed out after {} ms",
            host(r),
            ms(r)
        )),
        kind!("auth.redis", 40, |r| format!(
            "could not store session {}: redis {}:6379 connection refused",
            uuid(r),
            host(r)
        )),
    ],
    novel: kind!("auth.novel", 1, |r| format!(
        "token signing failed: key {} not found in keyring /etc/auth/keys/{}.jwks",
        hex(r, 8),
        pick(r, &["prod", "prod-2", "rotation"])
    )),
};

static FEED: Catalogue = Catalogue {
    info: &[
        kind!("feed.render", 40, |r| format!(
            "rendered feed for user {}: {} items in {} ms",
            user(r),
            n(r, 200),
            ms(r)
        )),
        kind!("feed.cache", 25, |r| format!("cache hit for feed:{}:page:{}", user(r), 1 + n(r, 20))),
        kind!("feed.shard", 20, |r| format!(
            "fetched {} posts from shard {} in {} ms",
            n(r, 500),
            pick(r, &["s1", "s2", "s3", "s4"]),
            ms(r)
        )),
        kind!("feed.get", 15, |r| format!("GET /feed/{}?page={} served in {} ms", user(r), 1 + n(r, 20), ms(r))),
    ],
    warn: &[
        kind!("feed.slow", 60, |r| format!("slow ranking for user {}: {} ms over budget", user(r), ms(r))),
        kind!("feed.stale", 40, |r| format!("dropped {} stale items from feed of {}", 1 + n(r, 50), email(r))),
    ],
    error: &[
        kind!("feed.ranker", 60, |r| format!("ranking service {} returned 503 after {} ms", host(r), ms(r))),
        kind!("feed.decode", 40, |r| format!("failed to decode post {}: unexpected end of JSON input", uuid(r))),
    ],
    novel: kind!("feed.novel", 1, |r| format!(
        "thumbnail upload {} rejected by CDN: signature mismatch for bucket media-{}",
        uuid(r),
        pick(r, &["eu", "us", "ap"])
    )),
};

static DB: Catalogue = Catalogue {
    info: &[
        kind!("db.select", 40, |r| format!(
            "query ok: SELECT on table {} returned {} rows in {} ms",
            pick(r, TABLES),
            n(r, 1000),
            ms(r)
        )),
        kind!("db.commit", 25, |r| format!(
            "committed transaction {} ({} statements) in {} ms",
            100_000 + n(r, 900_000),
            1 + n(r, 20),
            ms(r)
        )),
        kind!("db.checkout", 20, |r| format!(
            "connection {} checked out (pool {}/50, {} waiting)",
            n(r, 5000),
            n(r, 50),
            n(r, 3)
        )),
        kind!("db.vacuum", 15, |r| format!(
            "vacuum of table {} finished: {} dead tuples removed",
            pick(r, TABLES),
            n(r, 100_000)
        )),
    ],
    warn: &[
        kind!("db.slow", 60, |r| format!("slow query on table {}: {} ms (threshold 500 ms)", pick(r, TABLES), ms(r))),
        kind!("db.pool", 40, |r| format!("connection pool at {}/50, {} clients waiting", 45 + n(r, 6), n(r, 30))),
    ],
    error: &[
        kind!("db.deadlock", 50, |r| format!(
            "deadlock detected between transactions {} and {}",
            100_000 + n(r, 900_000),
            100_000 + n(r, 900_000)
        )),
        kind!("db.timeout", 50, |r| format!(
            "query canceled after {} ms: statement timeout on table {}",
            ms(r),
            pick(r, TABLES)
        )),
    ],
    novel: kind!("db.novel", 1, |r| format!(
        "replica {} fell {} MB behind primary: WAL sender stalled",
        host(r),
        10 + n(r, 4000)
    )),
};

static GENERIC: Catalogue = Catalogue {
    info: &[
        kind!("app.get", 30, |r| format!(
            "handled GET /api/{}/{} in {} ms",
            pick(r, &["orders", "items", "carts"]),
            n(r, 100_000),
            ms(r)
        )),
        kind!("app.post", 20, |r| format!("handled POST /api/orders in {} ms", ms(r))),
        kind!("app.job", 30, |r| format!("processed job {} for user {}", uuid(r), user(r))),
        kind!("app.cache", 20, |r| format!("cache miss for key {}:{}", pick(r, &["item", "price"]), n(r, 10_000))),
    ],
    warn: &[kind!("app.retry", 100, |r| format!(
        "retrying request to http://{}:8080/v1/sync (attempt {}/5)",
        host(r),
        1 + n(r, 5)
    ))],
    error: &[kind!("app.dependency", 100, |r| format!("dependency {} unavailable: connection refused", host(r)))],
    novel: kind!("app.novel", 1, |r| format!("schema migration {} failed on {}: lock timeout", n(r, 500), host(r))),
};
