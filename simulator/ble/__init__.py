"""The simulated stimulator over BLE: its GATT service served by bumble.

- ``gatt_service``: the stimulator's GATT service (control point, status, identity; UUIDs in
  ``rig.dut.ble_uuids``).
- ``peripheral``: a bumble peripheral on an in-process ``LocalLink``: advertises, accepts connections,
  pairs only while its pairing window is open, and answers the frames written to its control point by
  notifying reply frames.
- ``air``: the virtual bench's air: the peripheral, its frames through the link model, and emulated HCI
  controllers served over TCP, which the rig opens as ``bumble:tcp-client:...`` adapters. The rig's
  bleak code (``rig.dut.ble_link``, with the bleak backend over bumble in ``rig.dut.bleak_bumble``) runs
  unchanged against it in CI: no radio, no BlueZ.
"""
