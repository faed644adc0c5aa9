"""The simulated stimulator over BLE: its GATT service served by bumble, and a bleak backend over bumble.

- ``gatt_service``: the stimulator's GATT service (control point, status, identity; UUIDs in
  ``rig.dut.ble_uuids``).
- ``peripheral``: a bumble peripheral on an in-process ``LocalLink`` that advertises, accepts a
  connection and answers the frames written to its control point by notifying reply frames.
- the bleak backend over bumble the rig uses lives in ``rig.dut.bleak_bumble`` (``BumbleScanner`` / ``BumbleClient``):
  same link, so the rig's bleak-based transport runs unchanged in CI (no radio, no BlueZ).
"""
