"""Open the bench's oscilloscope and pick its driver from ``*IDN?`` (or from the bench config)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyvisa.resources import MessageBasedResource

from rig.config.bench import AUTO, ScopeConfig
from rig.errors import InstrumentError
from rig.instruments import keysight, rigol
from rig.instruments.visa import ScpiSession, open_resource
from rig.interfaces import InstrumentIdentity, Oscilloscope

ScopeFactory = Callable[[MessageBasedResource, str, InstrumentIdentity], Oscilloscope]


@dataclass(frozen=True)
class ScopeFamily:
    """One supported family: its ``ScopeConfig.driver`` key, how to recognise it, how to build it."""

    key: str
    description: str
    matches: Callable[[InstrumentIdentity], bool]
    factory: ScopeFactory


def _keysight(resource: MessageBasedResource, name: str, identity: InstrumentIdentity) -> Oscilloscope:
    return keysight.KeysightInfiniiVision(resource, name, identity=identity)


def _rigol(resource: MessageBasedResource, name: str, identity: InstrumentIdentity) -> Oscilloscope:
    return rigol.RigolDS1000Z(resource, name, identity=identity)


SCOPE_FAMILIES: tuple[ScopeFamily, ...] = (
    ScopeFamily(
        key="keysight_infiniivision",
        description=f"{keysight.FAMILY} (*IDN? 'KEYSIGHT TECHNOLOGIES,DSOX3034T,...')",
        matches=keysight.matches,
        factory=_keysight,
    ),
    ScopeFamily(
        key="rigol_ds1000z",
        description=f"{rigol.FAMILY} (*IDN? 'RIGOL TECHNOLOGIES,DS1104Z,...')",
        matches=rigol.matches,
        factory=_rigol,
    ),
)


def known_families() -> str:
    return "; ".join(f"{f.key}: {f.description}" for f in SCOPE_FAMILIES)


def family_for(config: ScopeConfig, identity: InstrumentIdentity, idn_reply: str, resource: str) -> ScopeFamily:
    """The family named by ``config.driver``, or the first whose ``*IDN?`` pattern matches."""
    if config.driver != AUTO:
        for family in SCOPE_FAMILIES:
            if family.key == config.driver:
                return family
        raise InstrumentError(resource, "open", f"unknown scope driver {config.driver!r}", known_families())
    for family in SCOPE_FAMILIES:
        if family.matches(identity):
            return family
    raise InstrumentError(
        resource,
        "*IDN?",
        f"no driver for the scope identifying as {idn_reply!r}",
        f"one of {known_families()}",
    )


def open_scope(config: ScopeConfig) -> Oscilloscope:
    """Open ``config.resource``, identify the scope and return its driver (resource closed on failure)."""
    if config.resource == AUTO:
        raise InstrumentError(
            AUTO,
            "open",
            "scope.resource 'auto' was not resolved",
            "the bench to replace 'auto' with the emulated scope's VISA address before opening it",
        )
    resource = open_resource(config.resource, visa_library=config.visa_library, timeout_s=config.timeout_s)
    session = ScpiSession(resource, config.resource)
    try:
        idn_reply, identity = session.identify()
        family = family_for(config, identity, idn_reply, config.resource)
        return family.factory(resource, config.resource, identity)
    except BaseException:
        session.close()
        raise
