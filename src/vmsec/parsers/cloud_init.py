"""cloud-init configuration → :class:`CloudInitSetup`.

Sources, in the order cloud-init applies them (later wins): /etc/cloud/cloud.cfg, then
/etc/cloud/cloud.cfg.d/*.cfg in lexical order (merged recursively: mappings merge key by key, other
values are replaced), then the current instance's vendor data, user data and the cloud-config.txt
cloud-init made of them (/var/lib/cloud/instance; before the first boot, the seeds), whose
``#cloud-config`` parts (plain or in a MIME multipart message) override the files. YAML is read
with PyYAML's safe loader (no tags, no objects), the C-accelerated ``CSafeLoader`` where libyaml is
available; each file is capped at 512 KiB and all the YAML of one system at :data:`MAX_YAML_TOTAL`
bytes (the parse budget: beyond it the configuration is unknown, raised as TOO_LARGE), and walks
over the result are bounded.

Vendor data applies only when the configuration without it (the files and the user data) leaves
``vendor_data.enabled`` true, cloud-init's default (``stages.Init._consume_vendordata``).

Errors: a configuration file that cannot be read raises :class:`~vmsec.errors.ReadError` (its
settings might be the ones that matter); one that is not valid YAML or not a mapping is skipped, as
cloud-init's ``load_yaml`` skips it ("Failed loading yaml blob"), and listed in ``unparsed``, as is
invalid user data; both are also added to the caller's :class:`~vmsec.errors.Problems`.

Plaintext passwords are reported by *place* (file and key, with the user's name), never by value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vmsec.errors import ErrorKind, ParseError, Problems, ReadError
from vmsec.facts import CloudInitSetup

if TYPE_CHECKING:
    from vmsec.reading import Reader

CONFIG = "/etc/cloud/cloud.cfg"
CONFIG_DIR = "/etc/cloud/cloud.cfg.d"
# The current instance's data, lowest first: vendor data, then the user data that outranks it, then
# cloud-config.txt — what cloud-init made of the user data (templates rendered, archives and gzip
# unpacked) and applies. Old instances (instances/<id> the link no longer names) apply nothing.
INSTANCE = "/var/lib/cloud/instance"
INSTANCE_FILES = ("vendor-cloud-config.txt", "vendor-data.txt", "user-data.txt", "cloud-config.txt")
# Without the link (before the first boot, or a copied tree) any stored instance and the seeds
# are what may apply.
OTHER_GLOBS = ("/var/lib/cloud/instances/*", "/var/lib/cloud/seed/*")
OTHER_FILES = ("vendor-data.txt", "vendor-data", "user-data.txt", "user-data", "cloud-config.txt")
MAX_BYTES = 512 * 1024
MAX_FILES = 200
MAX_MERGE_STEPS = 100_000
MAX_MERGE_DEPTH = 64  # far deeper than any real cloud-config; aliases can make a mapping contain itself
MAX_MIME_PARTS = 100
MAX_YAML_TOTAL = 8 * 1024 * 1024  # all cloud-config YAML of one system (real ones: a few KB)
_HASH = re.compile(r"^\$[0-9a-z]+\$")
# cc_set_passwords' own test for a hashed ``password:`` or ``chpasswd.list`` entry (cloud-init 22.4 to
# today); with a ":" in it, a value is never a hash.
_CLOUD_INIT_HASH = re.compile(r"\$(1|2a|2y|5|6)(\$.+){2}")


def yaml_loader() -> Any:
    """libyaml's C SafeLoader when PyYAML has it (pure-Python YAML took minutes on hostile input)."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_cloud_config(text: str, origin: str = "cloud-config") -> dict[str, Any]:
    """One ``#cloud-config`` YAML document as a mapping (an empty document → ``{}``); raises
    :class:`ParseError` naming ``origin`` when it is not valid YAML or not a mapping."""
    import yaml  # here: most systems have no cloud-init, and PyYAML is a noticeable import

    try:
        data = yaml.load(text, Loader=yaml_loader())
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        # ValueError: a value YAML types but Python cannot hold (a date 2001-13-45, an integer of
        # thousands of digits) — cloud-init's safe_load fails on the document too.
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParseError(origin, f"not valid YAML: {first}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParseError(origin, f"top level is a {type(data).__name__}, not a mapping")
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any],
          budget: list[int] | None = None, depth: int = 0, origin: str = "cloud-config") -> dict[str, Any]:
    """Recursive merge (``override`` wins), bounded: YAML aliases can make a small file a huge tree
    (or a mapping that contains itself). Over the bounds: :class:`ReadError` (TOO_LARGE)."""
    budget = budget if budget is not None else [MAX_MERGE_STEPS]
    if depth > MAX_MERGE_DEPTH:
        raise ReadError(origin, f"mappings nested more than {MAX_MERGE_DEPTH} deep to merge",
                        ErrorKind.TOO_LARGE)
    out = dict(base)
    for key, value in override.items():
        budget[0] -= 1
        if budget[0] < 0:
            raise ReadError(origin, f"more than {MAX_MERGE_STEPS} keys to merge", ErrorKind.TOO_LARGE)
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge(old, value, budget, depth + 1, origin)
        else:
            out[key] = value
    return out


_TRUE_STRINGS = ("true", "1", "on", "yes")
_FALSE_STRINGS = ("off", "0", "no", "false")


def _as_bool(value: object) -> bool | None:
    """``ssh_pwauth`` as cc_set_passwords reads it: ``util.is_true``/``is_false`` on ``str(value)``
    (``1`` is true); None for ``unchanged`` or anything else (the setting is left alone)."""
    if isinstance(value, bool):
        return value
    text = str(value).lower().strip()
    if text in _TRUE_STRINGS:
        return True
    if text in _FALSE_STRINGS:
        return False
    return None


def _translate_bool(value: object) -> bool:
    """``disable_root`` as cc_ssh reads it (``util.translate_bool``): true only for True or a true
    string — anything else set, empty or ``unchanged`` included, is false."""
    if not value:
        return False
    if isinstance(value, bool):
        return value
    return str(value).lower().strip() in _TRUE_STRINGS


def _looks_hashed(value: object) -> bool:
    return isinstance(value, str) and bool(_HASH.match(value))


def _label(value: object) -> str:
    """A user name or type for a message. Never ``str()`` of a list or mapping: YAML aliases make a tiny
    file a tree with billions of leaves, cheap to hold but not to turn into text."""
    if isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        return "?"
    return value if len(value) <= 100 else value[:99] + "…"


def _scalar_password(value: object) -> str | None:
    """A password value as cloud-init turns it into text (``util.get_cfg_option_str``, or the
    ``"%s:%s"`` it hands to chpasswd): YAML's ``1234`` or ``true`` are passwords too."""
    if isinstance(value, bool | int | float):
        return str(value)
    return value if isinstance(value, str) else None


def _set_as_hash(password: str) -> bool:
    """Whether cc_set_passwords hands a ``password:`` or ``chpasswd.list`` value to ``chpasswd -e``:
    only MD5, bcrypt and SHA-256/512 crypt are recognised; anything else (a yescrypt ``$y$`` too) is
    set as the password itself."""
    return _CLOUD_INIT_HASH.match(password) is not None and ":" not in password


def _user_entries(config: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, settings) of every user cloud-init may create from ``config``, in the forms
    ug_util.normalize_users_groups accepts: a ``users`` list or (deprecated) mapping of name to
    settings — whose keys it normalises ("plain-text-passwd" is "plain_text_passwd") — and the ``user``
    override and ``system_info.default_user``, merged into the default user after that step, so a
    hyphenated key there never reaches create_user (cloud-init 22.4.2, checked by running it)."""

    def normalised(item: dict[Any, Any]) -> dict[str, Any]:
        return {str(k).replace("-", "_").strip(): v for k, v in list(item.items())[:1000]}

    entries: list[tuple[str, dict[str, Any]]] = []
    users = config.get("users")
    if isinstance(users, list):
        entries += [(_label(item.get("name", "default")), normalised(item))
                    for item in users[:1000] if isinstance(item, dict)]
    elif isinstance(users, dict):
        entries += [(_label(name), normalised(item))
                    for name, item in list(users.items())[:1000] if isinstance(item, dict)]
    user = config.get("user")
    if isinstance(user, dict):
        entries.append((_label(user.get("name", "default")), user))
    system_info = config.get("system_info")
    default_user = system_info.get("default_user") if isinstance(system_info, dict) else None
    if isinstance(default_user, dict):
        entries.append((_label(default_user.get("name", "default")), default_user))
    return entries


def plaintext_password_places(config: Mapping[str, Any], origin: str) -> list[str]:
    """Where ``config`` holds a plaintext password: ``origin: key (user)`` strings, never the value.

    Read as cloud-init 22.4 reads it (cc_set_passwords, ug_util, Distro.create_user): scalars of any
    YAML type are passwords; ``password:`` and ``chpasswd.list`` take only MD5/bcrypt/SHA crypt as
    hashes; user settings may be spelled with hyphens (``plain-text-passwd``)."""
    places: list[str] = []
    if "password" in config:  # get_cfg_option_str: str() of whatever is there, an empty value too
        raw = config["password"]
        password = "None" if raw is None else _scalar_password(raw)
        if password is None:  # a list or mapping: its text form (never built here: aliases) is set
            places.append(f"{origin}: password (default user; not text: cloud-init sets its text form)")
        elif password and not _set_as_hash(password):
            note = ("; empty: cloud-init sets the password 'None'" if raw is None
                    else _not_a_hash_note(password))
            places.append(f"{origin}: password (default user{note})")
    chpasswd = config.get("chpasswd")
    if isinstance(chpasswd, dict):
        listed = chpasswd.get("list")
        entries: list[str] = []
        if isinstance(listed, str):
            entries = listed.splitlines()
        elif isinstance(listed, list):
            entries = [e for e in listed if isinstance(e, str)]
        for entry in entries[:1000]:
            user, sep, password = entry.partition(":")
            if sep and password and password not in ("R", "RANDOM") and not _set_as_hash(password):
                places.append(f"{origin}: chpasswd.list ({user.strip()}{_not_a_hash_note(password)})")
        users = chpasswd.get("users")
        for item in users[:1000] if isinstance(users, list) else ():
            if not isinstance(item, dict) or "password" not in item:
                continue
            kind = _label(item.get("type", "hash")).lower()
            if kind == "text" or (kind == "hash" and not _looks_hashed(item.get("password"))):
                places.append(f"{origin}: chpasswd.users ({_label(item.get('name', '?'))})")
    for name, settings in _user_entries(config):
        plain = settings.get("plain_text_passwd")
        if plain and _scalar_password(plain) is not None:  # create_user: any true value goes to chpasswd
            places.append(f"{origin}: users[].plain_text_passwd ({name})")
        passwd = settings.get("passwd")  # useradd --password takes it as the hash, when it is a string
        if passwd and isinstance(passwd, str) and not _looks_hashed(passwd):
            places.append(f"{origin}: users[].passwd is not a crypt hash ({name})")
    return places


def _not_a_hash_note(password: str) -> str:
    if _looks_hashed(password):
        return "; a hash cloud-init does not recognise, set as the password itself"
    return ""


def cloud_config_parts(text: str) -> list[str]:
    """The ``#cloud-config`` documents in one user-data text: the text itself, or the parts of a
    MIME multipart message whose content type is text/cloud-config."""
    stripped = text.lstrip()
    if stripped.startswith("#cloud-config"):
        return [text]
    if stripped[:200].lower().startswith(("content-type:", "mime-version:")):
        import email
        import email.policy

        message = email.message_from_string(text, policy=email.policy.compat32)
        parts: list[str] = []
        for count, part in enumerate(message.walk()):
            if count > MAX_MIME_PARTS:
                break
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            body = payload.decode("utf-8", "replace")
            if part.get_content_type() == "text/cloud-config" or body.lstrip().startswith("#cloud-config"):
                parts.append(body)
        return parts
    return []


def _read_optional(reader: Reader, path: str) -> str | None:
    try:
        return reader.read_text(path, MAX_BYTES)
    except ReadError as exc:
        if exc.absent:
            return None
        raise


class _Budget:
    """The YAML parse budget of one system: bytes of YAML handed to the loader."""

    def __init__(self, total: int = MAX_YAML_TOTAL) -> None:
        self.left = total
        self.total = total
        self.spent = False

    def load(self, text: str, origin: str) -> dict[str, Any]:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.left:
            self.spent = True
            raise ReadError(origin, f"not parsed: the cloud-config YAML of this system exceeds "
                            f"{self.total // (1024 * 1024)} MiB in all (hostile input?)", ErrorKind.TOO_LARGE)
        self.left -= size
        return load_cloud_config(text, origin)


def _user_data_paths(reader: Reader) -> list[str]:
    if reader.exists(INSTANCE):
        return [f"{INSTANCE}/{name}" for name in INSTANCE_FILES]
    paths: list[str] = []
    for pattern in OTHER_GLOBS:
        try:
            for directory in reader.glob(pattern, MAX_FILES)[:MAX_FILES]:
                paths += [f"{directory}/{n}" for n in OTHER_FILES]
        except ReadError:
            continue
    return paths


def read_cloud_init(reader: Reader, *, problems: Problems | None = None,
                    yaml_budget: int = MAX_YAML_TOTAL) -> CloudInitSetup:
    """cloud-init's effective settings in ``reader``'s root. ``present`` is False when there is no
    /etc/cloud/cloud.cfg. A configuration file that cannot be read, or configuration over the parse
    budget, raises :class:`ReadError` (its settings might be the ones that matter); a file or user
    data that is not valid cloud-config is added to ``problems`` and ``unparsed`` and skipped, as
    cloud-init skips it."""
    problems = Problems() if problems is None else problems
    text = _read_optional(reader, CONFIG)
    if text is None:
        return CloudInitSetup(present=False)
    try:
        names = reader.listdir(CONFIG_DIR, MAX_FILES)
    except ReadError as exc:
        if not exc.absent:
            raise
        names = []
    merged: dict[str, Any] = {}
    budget = [MAX_MERGE_STEPS]
    loader = _Budget(yaml_budget)
    origins: list[str] = []
    places: list[str] = []
    unparsed: list[str] = []
    paths = [CONFIG] + [f"{CONFIG_DIR}/{name}" for name in names if name.endswith(".cfg")]
    for path in paths:
        body = text if path == CONFIG else _read_optional(reader, path)  # one at a time: bounded memory
        if body is None:
            continue
        try:
            config = loader.load(body, path)
        except ParseError as exc:  # cloud-init's load_yaml logs it and goes on without the file
            problems.append(exc)
            unparsed.append(f"{path}: {exc.reason}")
            continue
        merged = merge(merged, config, budget, origin=path)
        origins.append(path)
        places += plaintext_password_places(config, path)
    vendor: list[tuple[str, dict[str, Any]]] = []  # (where, config), in order
    user: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for path in _user_data_paths(reader):
        try:
            user_data = _read_optional(reader, path)
        except ReadError as exc:
            problems.append(exc)
            continue
        if user_data is None or user_data in seen:
            continue  # /var/lib/cloud/instance is a link to the current instances/<id>: read once
        seen.add(user_data)
        try:
            documents = cloud_config_parts(user_data)
        except RecursionError:  # MIME parts nested deeper than the email package can walk
            problems.append(ParseError(path, "MIME multipart nested too deeply to read"))
            unparsed.append(f"{path}: MIME multipart nested too deeply to read")
            continue
        for index, document in enumerate(documents):
            where = path if index == 0 else f"{path} (part {index + 1})"
            try:
                config = loader.load(document, where)
            except ReadError as exc:
                if loader.spent:
                    raise  # the parse budget is spent: what follows is unknown, not absent
                problems.append(exc)  # invalid: cloud-init fails on it too
                unparsed.append(f"{where}: {exc.reason}")
                continue
            (vendor if path.rsplit("/", 1)[-1].startswith("vendor") else user).append((where, config))
            places += plaintext_password_places(config, where)  # stored on disk, applied or not
    # Vendor data applies only when the configuration without it leaves vendor_data.enabled true
    # (stages.Init._consume_vendordata; cloud-init's built-in default is enabled).
    vendor_enabled = _vendor_data_enabled(_merged(merged, user, [MAX_MERGE_STEPS], Problems(), []))
    merged = _merged(merged, (vendor if vendor_enabled else []) + user, budget, problems, unparsed, origins)
    # disable_root defaults to true in cloud-init; ssh_pwauth unset leaves sshd's own setting alone.
    disable_root = _translate_bool(merged["disable_root"]) if "disable_root" in merged else True
    return CloudInitSetup(present=True, ssh_pwauth=_as_bool(merged.get("ssh_pwauth")),
                          disable_root=disable_root, plaintext_passwords=tuple(dict.fromkeys(places)),
                          origins=tuple(origins), unparsed=tuple(unparsed),
                          vendor_data_disabled=bool(vendor) and not vendor_enabled)


def _merged(base: dict[str, Any], documents: list[tuple[str, dict[str, Any]]], budget: list[int],
            problems: Problems, unparsed: list[str], origins: list[str] | None = None) -> dict[str, Any]:
    """``base`` with ``documents`` merged over it in order; a document too large to merge is left out
    (cloud-init fails on it too) and recorded."""
    for where, config in documents:
        try:
            base = merge(base, config, budget, origin=where)
        except ReadError as exc:
            problems.append(exc)
            unparsed.append(f"{where}: {exc.reason}")
            continue
        if origins is not None:
            origins.append(where)
    return base


def _vendor_data_enabled(config: Mapping[str, Any]) -> bool:
    """``vendor_data.enabled`` as cloud-init tests it (``util.is_true``), over its built-in
    ``{enabled: true}`` (merged key by key, so a mapping without ``enabled`` keeps it); a
    ``vendor_data`` that is not a mapping disables vendor data ("invalid vendor_data setting")."""
    setting = config.get("vendor_data", {})
    if not isinstance(setting, dict):
        return False
    return _as_bool(setting.get("enabled", True)) is True
