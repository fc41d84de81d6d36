//! The classes of keyspace notifications: the flag letters of
//! `notify-keyspace-events`, as a typed set.
//!
//! A change to a key is announced when its class is on (`$` for the
//! string commands, `g` for the generic ones such as DEL and EXPIRE, `x`
//! for a key that expired...) and at least one of the two channels is:
//! `K` publishes on `__keyspace@<db>__:<key>` (the message is the event),
//! `E` on `__keyevent@<db>__:<event>` (the message is the key).

/// A set of notification classes and channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(u16);

impl Events {
    /// Nothing: notifications off, Redis's default.
    pub const NONE: Events = Events(0);
    /// `K`: publish on the keyspace channel.
    pub const KEYSPACE: Events = Events(1 << 0);
    /// `E`: publish on the keyevent channel.
    pub const KEYEVENT: Events = Events(1 << 1);
    /// `g`: generic commands (DEL, EXPIRE, RENAME ...).
    pub const GENERIC: Events = Events(1 << 2);
    /// `$`: string commands.
    pub const STRING: Events = Events(1 << 3);
    /// `l`: list commands.
    pub const LIST: Events = Events(1 << 4);
    /// `s`: set commands.
    pub const SET: Events = Events(1 << 5);
    /// `h`: hash commands.
    pub const HASH: Events = Events(1 << 6);
    /// `z`: sorted set commands.
    pub const ZSET: Events = Events(1 << 7);
    /// `x`: a key deleted because it expired.
    pub const EXPIRED: Events = Events(1 << 8);
    /// `e`: a key evicted for `maxmemory`.
    pub const EVICTED: Events = Events(1 << 9);
    /// `t`: stream commands.
    pub const STREAM: Events = Events(1 << 10);
    /// `m`: a read of a missing key.
    pub const KEY_MISS: Events = Events(1 << 11);
    /// `d`: module events.
    pub const MODULE: Events = Events(1 << 12);
    /// `n`: a key created.
    pub const NEW: Events = Events(1 << 13);
    /// `A`: `g$lshzxetd`, every class but `n` and `m`.
    pub const ALL: Events = Events(
        Events::GENERIC.0
            | Events::STRING.0
            | Events::LIST.0
            | Events::SET.0
            | Events::HASH.0
            | Events::ZSET.0
            | Events::EXPIRED.0
            | Events::EVICTED.0
            | Events::STREAM.0
            | Events::MODULE.0,
    );

    /// The letters, in the order Redis writes them back (after `A`).
    const LETTERS: [(Events, char); 11] = [
        (Events::GENERIC, 'g'),
        (Events::STRING, '$'),
        (Events::LIST, 'l'),
        (Events::SET, 's'),
        (Events::HASH, 'h'),
        (Events::ZSET, 'z'),
        (Events::EXPIRED, 'x'),
        (Events::EVICTED, 'e'),
        (Events::STREAM, 't'),
        (Events::MODULE, 'd'),
        (Events::NEW, 'n'),
    ];

    /// The set as bits, to keep in an atomic.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The set [`Events::bits`] gave.
    pub const fn from_bits(bits: u16) -> Events {
        Events(bits)
    }

    /// This set and `other`'s members.
    pub const fn and(self, other: Events) -> Events {
        Events(self.0 | other.0)
    }

    /// Does this set share a member with `other`?
    pub const fn any(self, other: Events) -> bool {
        self.0 & other.0 != 0
    }

    /// Is an event of `class` announced anywhere? Its class must be on,
    /// and one of the channels.
    pub const fn announces(self, class: Events) -> bool {
        self.any(class) && self.any(Events::KEYSPACE.and(Events::KEYEVENT))
    }

    /// Parses the letters of `notify-keyspace-events`; None for an unknown one.
    pub fn parse(text: &str) -> Option<Events> {
        let mut events = Events::NONE;
        for letter in text.chars() {
            let class = match letter {
                'A' => Events::ALL,
                'K' => Events::KEYSPACE,
                'E' => Events::KEYEVENT,
                'm' => Events::KEY_MISS,
                _ => Events::LETTERS
                    .iter()
                    .find(|(_, l)| *l == letter)
                    .map(|(class, _)| *class)?,
            };
            events = events.and(class);
        }
        Some(events)
    }

    /// The letters as CONFIG GET shows them: `A` for all the classes it
    /// stands for (and then, as in Redis, `n` is not written even if set),
    /// else each class; then `K`, `E`, `m`.
    pub fn to_text(self) -> String {
        let mut text = String::new();
        if self.0 & Events::ALL.0 == Events::ALL.0 {
            text.push('A');
        } else {
            for (class, letter) in Events::LETTERS {
                if self.any(class) {
                    text.push(letter);
                }
            }
        }
        for (class, letter) in [
            (Events::KEYSPACE, 'K'),
            (Events::KEYEVENT, 'E'),
            (Events::KEY_MISS, 'm'),
        ] {
            if self.any(class) {
                text.push(letter);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(text: &str) -> String {
        Events::parse(text).expect("valid letters").to_text()
    }

    #[test]
    fn config_get_writes_the_letters_as_redis_does() {
        for (set, shown) in [
            ("KEA", "AKE"),
            ("Ex", "xE"),
            ("gK$", "g$K"),
            ("KEn", "nKE"),
            ("En$", "$nE"),
            ("KEAnm", "AKEm"),
            ("KEAn", "AKE"),
            ("", ""),
        ] {
            assert_eq!(normalised(set), shown, "{set}");
        }
        assert_eq!(Events::parse("KEq"), None);
    }

    #[test]
    fn nothing_is_announced_without_a_channel() {
        let classes = Events::parse("A").expect("valid");
        assert!(!classes.announces(Events::STRING));
        let both = Events::parse("K$").expect("valid");
        assert!(both.announces(Events::STRING));
        assert!(!both.announces(Events::GENERIC));
    }
}
