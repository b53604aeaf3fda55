"""Running systemd units, asked of systemd itself over D-Bus (``org.freedesktop.systemd1.Manager.
ListUnits``), read-only.

Used for the host vmsec runs on when PID 1 is systemd: the unit states systemd reports are what runs,
where the process table only shows command names. jeepney (pure Python) speaks the protocol; it is
imported here only. The bus is this machine's own system bus, so its answer is trusted like /proc, but
it is still bounded (time, number of units).
"""

from __future__ import annotations

from vmsec.errors import VmsecError
from vmsec.facts import RunningService

SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
TIMEOUT = 10.0
MAX_UNITS = 50_000
_RUNNING_TYPES = (".service", ".socket")


class SystemdUnavailable(VmsecError):
    """systemd could not be asked (no bus, no systemd on it, a timeout): the caller falls back."""


def running_units(address: str = SYSTEM_BUS, timeout: float = TIMEOUT) -> tuple[RunningService, ...]:
    """Active service and socket units (``ListUnits``: name, description, load, active and sub state …)."""
    try:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg
    except ImportError as exc:  # a dependency of vmsec; only a broken install lacks it
        raise SystemdUnavailable(f"jeepney is not installed: {exc}") from exc
    manager = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                          interface="org.freedesktop.systemd1.Manager")
    try:
        conn = open_dbus_connection(address, auth_timeout=timeout)
    except (OSError, ValueError, KeyError) as exc:
        raise SystemdUnavailable(f"D-Bus at {address} could not be opened: {exc}") from exc
    except Exception as exc:  # jeepney raises its own AuthenticationError & co
        raise SystemdUnavailable(f"D-Bus at {address}: {type(exc).__name__}: {exc}") from exc
    try:
        body = unwrap_msg(conn.send_and_get_reply(new_method_call(manager, "ListUnits"), timeout=timeout))
    except TimeoutError as exc:
        raise SystemdUnavailable(f"systemd did not answer ListUnits within {timeout:g} s") from exc
    except Exception as exc:  # DBusErrorResponse (no systemd on this bus), a closed connection …
        raise SystemdUnavailable(f"ListUnits failed: {type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()
    units = body[0] if body else []
    out: list[RunningService] = []
    for unit in units[:MAX_UNITS]:
        if not isinstance(unit, tuple) or len(unit) < 5:
            continue
        name, _description, _load, active, sub = (str(v) for v in unit[:5])
        if active == "active" and name.endswith(_RUNNING_TYPES):
            out.append(RunningService(name=name, source="systemd", state=sub))
    return tuple(out)


__all__ = ["SYSTEM_BUS", "SystemdUnavailable", "running_units"]
