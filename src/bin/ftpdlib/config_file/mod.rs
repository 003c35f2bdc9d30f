//! `--config FILE`: the options of the command line in a TOML file, each under its long
//! name (`port = 2121`, `max-cons-per-ip = 10`, `write = true`), and virtual users as
//! `[[users]]` tables, so that one file describes a server. The command line and the
//! `FTPDLIB_*` variables win over the file, and the file over the defaults.
//!
//! The file is read by the `toml` crate into [`Item`]s that keep their place in the
//! text. Each option is then checked against its clap declaration in [`crate::cli`]: its
//! TOML type (a switch takes `true` / `false`, a number an integer, the rest a string),
//! then its value, by the same converter as on the command line. What passes becomes a
//! `--long=value` argument that [`crate::parse`] puts before the command line's own, so
//! that no option is known to the file alone. Every error is `FILE:LINE: key: reason`.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::{Arg, Command};
use ftpdlib::authorizers::READ_PERMS;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::cli::argparse_name;

/// A config file, read and checked.
#[derive(Debug)]
pub struct ConfigFile {
    /// The options, in the file's order: the name (as clap knows it) and the argument.
    pub options: Vec<(String, OsString)>,
    /// The `[[users]]`.
    pub users: Vec<FileUser>,
    /// The `[[virtual-hosts]]`.
    pub virtual_hosts: Vec<VirtualHostSpec>,
}

/// A virtual host (RFC 7151): from a `[[virtual-hosts]]` table or `--virtual-host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHostSpec {
    /// Where it was given (`FILE:LINE` of its `name`, or the flag), for errors.
    pub at: String,
    /// The host name clients send with HOST (or as their TLS SNI name).
    pub name: String,
    /// Its users, in the users file format (`--users-file`).
    pub users_file: PathBuf,
    /// The text of the 220 that accepts HOST.
    pub banner: Option<String>,
    /// Its certificate chain (PEM), picked by SNI.
    pub certfile: Option<PathBuf>,
    /// Its key, else in `certfile`.
    pub keyfile: Option<PathBuf>,
}

/// One `[[users]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUser {
    /// `FILE:LINE` of the table's `name`, for errors found when the user is added.
    pub at: String,
    /// The login name.
    pub name: String,
    /// How the password is checked.
    pub password: Password,
    /// The home directory.
    pub home: PathBuf,
    /// The permission letters (`elr` when left out).
    pub perm: String,
    /// The 230 text after login, if not the default.
    pub msg_login: Option<String>,
    /// The 221 text at QUIT, if not the default.
    pub msg_quit: Option<String>,
    /// `[[users.overrides]]`: other rights below the home.
    pub overrides: Vec<Override>,
    /// `quota-bytes` and `quota-files`.
    pub quota: ftpdlib::quotas::Quota,
    /// `read-limit` / `write-limit`: bytes per second for all of the user's uploads /
    /// downloads together (None: the `--user-read-limit` / `--user-write-limit` default).
    pub read_limit: Option<u64>,
    pub write_limit: Option<u64>,
}

/// A user's password as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// `password-hash`: a crypt(3) string (`ftpdlib --hash-password`).
    Hash(String),
    /// `password`: clear text.
    Plain(String),
    /// Neither: only for `anonymous`, who logs in with any password.
    Anonymous,
}

/// One `[[users.overrides]]` table: `perm` inside `directory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// `FILE:LINE` of its `directory`.
    pub at: String,
    /// The directory, relative to the user's home unless absolute.
    pub directory: PathBuf,
    /// The permission letters there.
    pub perm: String,
    /// Whether the subdirectories are covered too (false).
    pub recursive: bool,
}

/// Reads the file at `path` and checks it against the options of `cmd`.
///
/// # Errors
/// The message for the user: `FILE: reason` when the file cannot be read or is not
/// TOML, `FILE:LINE: key: reason` for a key or a value.
pub fn read(path: &Path, cmd: &Command) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text, path, cmd)
}

/// As [`read`], for the file's text.
pub fn parse(text: &str, path: &Path, cmd: &Command) -> Result<ConfigFile, String> {
    let at = |span: std::ops::Range<usize>| At { text, path, span };
    let document: Item = toml::from_str(text).map_err(|e| {
        let place = e
            .span()
            .map_or_else(|| path.display().to_string(), |s| at(s).to_string());
        // serde sees a date or a time as a table with one private key, which the spanned
        // key of an option table cannot hold: no option takes one.
        if e.message().contains("$__toml_private") {
            return format!("{place}: a date or a time is not a value any key takes");
        }
        format!("{place}: {}", e.message().trim_end())
    })?;
    let Item::Table(table) = document else {
        return Err(format!("{}: expected a table of options", path.display()));
    };
    let mut file = ConfigFile {
        options: Vec::new(),
        users: Vec::new(),
        virtual_hosts: Vec::new(),
    };
    for (key, value) in table {
        let key_at = at(key.span());
        if key.get_ref() == "users" {
            let Item::Array(tables) = value.get_ref() else {
                return Err(wrong_type(
                    &at(value.span()),
                    "users",
                    "[[users]] tables",
                    &value,
                ));
            };
            for table in tables {
                file.users.push(user(table, &at)?);
            }
            continue;
        }
        if key.get_ref() == "virtual-hosts" {
            let Item::Array(tables) = value.get_ref() else {
                return Err(wrong_type(
                    &at(value.span()),
                    "virtual-hosts",
                    "[[virtual-hosts]] tables",
                    &value,
                ));
            };
            for table in tables {
                file.virtual_hosts.push(virtual_host(table, &at)?);
            }
            continue;
        }
        let Some(arg) = option(cmd, key.get_ref()) else {
            return Err(format!("{key_at}: unknown key '{}'", key.get_ref()));
        };
        let name = key.get_ref();
        let value_at = at(value.span());
        let kind = Kind::of(arg);
        let given = match (kind, value.get_ref()) {
            (Kind::Switch, Item::Bool(on)) => {
                // A switch off is the default: nothing to pass.
                if *on {
                    file.options
                        .push((arg.get_id().to_string(), format!("--{name}").into()));
                }
                continue;
            }
            (Kind::Number | Kind::Rate, Item::Int(n)) => n.to_string(),
            (Kind::Text | Kind::Rate, Item::Str(s)) => s.clone(),
            (kind, _) => return Err(wrong_type(&value_at, name, kind.expected(), &value)),
        };
        check(arg, &given).map_err(|reason| format!("{value_at}: {name}: {reason}"))?;
        file.options
            .push((arg.get_id().to_string(), format!("--{name}={given}").into()));
    }
    Ok(file)
}

/// The option the file may set under `name`: any of the command line's but those that
/// are actions (`--help`, `--version`, `--hash-password`, `--completions`, `--man`) and
/// `--config` itself.
fn option<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    if NOT_IN_FILE.contains(&name) {
        return None;
    }
    cmd.get_arguments().find(|a| a.get_long() == Some(name))
}

/// Converts `value` as the command line's parser for `arg` does; the error is the
/// parser's reason, without argparse's `argument -p/--port: ` in front. (clap runs a value
/// parser only inside a parse: this one is of a command that has only `arg`.)
fn check(arg: &Arg, value: &str) -> Result<(), String> {
    let token = format!("--{}={value}", arg.get_long().unwrap_or_default());
    let alone = Command::new(crate::parse::PROG)
        .no_binary_name(true)
        .arg(arg.clone());
    let Err(error) = alone.try_get_matches_from([token]) else {
        return Ok(());
    };
    let message = match error.get(ContextKind::Custom) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => error.to_string(),
    };
    let prefix = format!("argument {}: ", argparse_name(arg));
    Err(message
        .strip_prefix(&prefix)
        .map_or_else(|| message.clone(), str::to_owned))
}

/// The TOML type an option takes.
#[derive(Clone, Copy)]
enum Kind {
    /// `true` / `false`.
    Switch,
    /// An integer.
    Number,
    /// An integer, or a string with a unit (`"1M"`).
    Rate,
    /// A string.
    Text,
}

impl Kind {
    fn of(arg: &Arg) -> Kind {
        if !arg.get_action().takes_values() {
            return Kind::Switch;
        }
        match arg.get_value_names() {
            Some([name, ..]) if name.as_str() == "BYTES" => Kind::Rate,
            Some([name, ..]) if NUMBERS.contains(&name.as_str()) => Kind::Number,
            _ => Kind::Text,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Switch => "true or false",
            Kind::Number => "an integer",
            Kind::Rate => "an integer or a string such as \"10M\"",
            Kind::Text => "a string",
        }
    }
}

/// One `[[users]]` table.
fn user<'t>(
    table: &Spanned<Item>,
    at: &impl Fn(std::ops::Range<usize>) -> At<'t>,
) -> Result<FileUser, String> {
    let Item::Table(keys) = table.get_ref() else {
        return Err(wrong_type(&at(table.span()), "users", "a table", table));
    };
    let table_at = at(table.span());
    let mut fields = Fields::new(keys, at, "users", USER_KEYS)?;
    let (name_at, name) = fields
        .text("name")?
        .ok_or_else(|| format!("{table_at}: users: no name"))?;
    let hash = fields.text("password-hash")?;
    let plain = fields.text("password")?;
    let (_, home) = fields
        .text("home")?
        .ok_or_else(|| format!("{name_at}: user '{name}': no home"))?;
    let password = match (hash, plain) {
        (Some((_, hash)), None) => Password::Hash(hash),
        (None, Some((_, plain))) => Password::Plain(plain),
        (None, None) if name == ANONYMOUS => Password::Anonymous,
        (None, None) => {
            return Err(format!(
                "{name_at}: user '{name}': no password-hash or password (make a hash with \
                 ftpdlib --hash-password)"
            ))
        }
        (Some((at, _)), Some(_)) => {
            return Err(format!(
                "{at}: user '{name}': password-hash and password: give one of them"
            ))
        }
    };
    if name == ANONYMOUS && password != Password::Anonymous {
        return Err(format!(
            "{name_at}: user 'anonymous' takes no password (any is accepted)"
        ));
    }
    let mut overrides = Vec::new();
    if let Some(list) = fields.array("overrides")? {
        for table in list {
            overrides.push(override_perm(table, at)?);
        }
    }
    Ok(FileUser {
        at: name_at.to_string(),
        perm: fields
            .text("perm")?
            .map_or_else(|| READ_PERMS.to_owned(), |(_, p)| p),
        msg_login: fields.text("msg-login")?.map(|(_, m)| m),
        msg_quit: fields.text("msg-quit")?.map(|(_, m)| m),
        name,
        password,
        home: home.into(),
        overrides,
        quota: ftpdlib::quotas::Quota {
            bytes: fields.size("quota-bytes")?,
            files: fields.size("quota-files")?,
        },
        read_limit: fields.rate("read-limit")?,
        write_limit: fields.rate("write-limit")?,
    })
}

/// One `[[virtual-hosts]]` table.
fn virtual_host<'t>(
    table: &Spanned<Item>,
    at: &impl Fn(std::ops::Range<usize>) -> At<'t>,
) -> Result<VirtualHostSpec, String> {
    let Item::Table(keys) = table.get_ref() else {
        return Err(wrong_type(
            &at(table.span()),
            "virtual-hosts",
            "a table",
            table,
        ));
    };
    let table_at = at(table.span());
    let mut fields = Fields::new(keys, at, "virtual-hosts", VIRTUAL_HOST_KEYS)?;
    let (name_at, name) = fields
        .text("name")?
        .ok_or_else(|| format!("{table_at}: virtual-hosts: no name"))?;
    let (_, users_file) = fields
        .text("users-file")?
        .ok_or_else(|| format!("{name_at}: virtual host '{name}': no users-file"))?;
    let keyfile = fields.text("keyfile")?;
    let certfile = fields.text("certfile")?;
    if let (Some((key_at, _)), None) = (&keyfile, &certfile) {
        return Err(format!(
            "{key_at}: virtual host '{name}': keyfile without certfile"
        ));
    }
    Ok(VirtualHostSpec {
        at: name_at.to_string(),
        banner: fields.text("banner")?.map(|(_, b)| b),
        certfile: certfile.map(|(_, c)| c.into()),
        keyfile: keyfile.map(|(_, k)| k.into()),
        name,
        users_file: users_file.into(),
    })
}

/// One `[[users.overrides]]` table.
fn override_perm<'t>(
    table: &Spanned<Item>,
    at: &impl Fn(std::ops::Range<usize>) -> At<'t>,
) -> Result<Override, String> {
    let Item::Table(keys) = table.get_ref() else {
        return Err(wrong_type(&at(table.span()), "overrides", "a table", table));
    };
    let table_at = at(table.span());
    let mut fields = Fields::new(keys, at, "overrides", OVERRIDE_KEYS)?;
    let (dir_at, directory) = fields
        .text("directory")?
        .ok_or_else(|| format!("{table_at}: overrides: no directory"))?;
    let (_, perm) = fields
        .text("perm")?
        .ok_or_else(|| format!("{dir_at}: overrides: no perm"))?;
    Ok(Override {
        at: dir_at.to_string(),
        directory: directory.into(),
        perm,
        recursive: fields.switch("recursive")?.unwrap_or(false),
    })
}

/// The keys of a table, looked up by name with their type checked.
struct Fields<'a, 't, F> {
    keys: &'a [(Spanned<String>, Spanned<Item>)],
    at: &'a F,
    table: &'static str,
    _text: std::marker::PhantomData<&'t str>,
}

impl<'a, 't, F: Fn(std::ops::Range<usize>) -> At<'t>> Fields<'a, 't, F> {
    /// Fails on a key not in `known`.
    fn new(
        keys: &'a [(Spanned<String>, Spanned<Item>)],
        at: &'a F,
        table: &'static str,
        known: &[&str],
    ) -> Result<Self, String> {
        if let Some((key, _)) = keys
            .iter()
            .find(|(k, _)| !known.contains(&k.get_ref().as_str()))
        {
            return Err(format!(
                "{}: {table}: unknown key '{}' (known: {})",
                at(key.span()),
                key.get_ref(),
                known.join(", ")
            ));
        }
        Ok(Fields {
            keys,
            at,
            table,
            _text: std::marker::PhantomData,
        })
    }

    fn get(&self, name: &str) -> Option<&'a Spanned<Item>> {
        self.keys
            .iter()
            .find(|(k, _)| k.get_ref() == name)
            .map(|(_, v)| v)
    }

    fn text(&mut self, name: &str) -> Result<Option<(At<'t>, String)>, String> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let at = (self.at)(value.span());
        match value.get_ref() {
            Item::Str(s) => Ok(Some((at, s.clone()))),
            _ => Err(wrong_type(
                &at,
                &format!("{}.{name}", self.table),
                "a string",
                value,
            )),
        }
    }

    /// Bytes per second: a number, or a string with a K, M or G suffix (as `--read-limit`).
    fn rate(&mut self, name: &str) -> Result<Option<u64>, String> {
        self.scaled(
            name,
            |s| crate::cli::rate(std::ffi::OsStr::new(s)),
            |n| format!("invalid rate {n}"),
            "a number of bytes (K, M, G suffixes)",
        )
    }

    /// A count: an integer, or a string with a K, M or G suffix (`"500M"`).
    fn size(&mut self, name: &str) -> Result<Option<u64>, String> {
        self.scaled(
            name,
            ftpdlib::quotas::parse_size,
            |_| "a count cannot be negative".to_owned(),
            "an integer or a string such as \"10M\"",
        )
    }

    /// A number given as an integer, or as a string that `parse` reads (with a unit);
    /// `negative` words the error for a negative integer, `expected` a wrong type.
    fn scaled(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<u64, String>,
        negative: impl Fn(i64) -> String,
        expected: &str,
    ) -> Result<Option<u64>, String> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let at = (self.at)(value.span());
        let key = format!("{}.{name}", self.table);
        match value.get_ref() {
            Item::Int(n) => u64::try_from(*n)
                .map(Some)
                .map_err(|_| format!("{at}: {key}: {}", negative(*n))),
            Item::Str(s) => parse(s).map(Some).map_err(|e| format!("{at}: {key}: {e}")),
            _ => Err(wrong_type(&at, &key, expected, value)),
        }
    }

    fn switch(&mut self, name: &str) -> Result<Option<bool>, String> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value.get_ref() {
            Item::Bool(b) => Ok(Some(*b)),
            _ => Err(wrong_type(
                &(self.at)(value.span()),
                &format!("{}.{name}", self.table),
                "true or false",
                value,
            )),
        }
    }

    fn array(&mut self, name: &str) -> Result<Option<&'a [Spanned<Item>]>, String> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value.get_ref() {
            Item::Array(items) => Ok(Some(items)),
            _ => Err(wrong_type(
                &(self.at)(value.span()),
                &format!("{}.{name}", self.table),
                "tables",
                value,
            )),
        }
    }
}

fn wrong_type(at: &At<'_>, key: &str, expected: &str, found: &Spanned<Item>) -> String {
    format!(
        "{at}: {key}: expected {expected}, found {}",
        found.get_ref().kind()
    )
}

/// A place in the file, shown as `FILE:LINE`.
#[derive(Clone)]
struct At<'t> {
    text: &'t str,
    path: &'t Path,
    span: std::ops::Range<usize>,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let before = self.text.get(..self.span.start).unwrap_or(self.text);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        write!(f, "{}:{line}", self.path.display())
    }
}

/// A TOML value, kept as the file has it. Tables keep their keys in the file's order,
/// each with its place.
#[derive(Debug)]
enum Item {
    Bool(bool),
    Int(i64),
    Float,
    Str(String),
    Array(Vec<Spanned<Item>>),
    Table(Vec<(Spanned<String>, Spanned<Item>)>),
}

impl Item {
    /// What the value is, for an error message.
    fn kind(&self) -> &'static str {
        match self {
            Item::Bool(_) => "a boolean",
            Item::Int(_) => "an integer",
            Item::Float => "a float",
            Item::Str(_) => "a string",
            Item::Array(_) => "an array",
            Item::Table(_) => "a table",
        }
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Item, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Item, E> {
        Ok(Item::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
        Ok(Item::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
        i64::try_from(v)
            .map(Item::Int)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Item, E> {
        Ok(Item::Float)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
        Ok(Item::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Item, E> {
        Ok(Item::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Item::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            keys.push((key, map.next_value()?));
        }
        // The file's order (toml hands the keys sorted by name): the first error found is
        // the first in the file.
        keys.sort_by_key(|(key, _)| key.span().start);
        Ok(Item::Table(keys))
    }
}

/// The user who logs in with any password (as in the users file).
const ANONYMOUS: &str = "anonymous";

/// The command line's options that the file cannot set: actions, not settings.
const NOT_IN_FILE: [&str; 6] = [
    "help",
    "version",
    "hash-password",
    "completions",
    "man",
    "config",
];

/// The value names (as the help shows them) of the options that take an integer.
const NUMBERS: [&str; 5] = ["PORT", "N", "SECONDS", "MAX_CONS", "MAX_CONS_PER_IP"];

/// The keys of a `[[users]]` table.
const USER_KEYS: &[&str] = &[
    "name",
    "password-hash",
    "password",
    "home",
    "perm",
    "msg-login",
    "msg-quit",
    "overrides",
    "quota-bytes",
    "quota-files",
    "read-limit",
    "write-limit",
];

/// The keys of a `[[users.overrides]]` table.
const OVERRIDE_KEYS: &[&str] = &["directory", "perm", "recursive"];

/// The keys of a `[[virtual-hosts]]` table.
const VIRTUAL_HOST_KEYS: &[&str] = &["name", "users-file", "banner", "certfile", "keyfile"];

#[cfg(test)]
mod tests;
