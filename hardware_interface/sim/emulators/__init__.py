"""Byte-level emulators of the lab's devices, speaking the firmware protocol over a SimLab.

Reach them with the real drivers through pyserial's `serial_for_url("maosicsim://LAB/MODULE")`
(module `protocol_maosicsim`, registered by hardware_interface.transports) or through a
pseudo-terminal (`pty_bridge.PtyBridge`). Each emulator can be told to misbehave for tests:
`emulator.misbehave("drop" | "garble" | "timeout" | "disconnect", count)`.
"""
