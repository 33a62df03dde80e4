"""A small Modbus/TCP PLC for gemelo's lab, on Debian's python3-pymodbus 3.0.

Run by /usr/bin/python3 (Debian's Python, where python3-pymodbus lives):
    modbus_plc.py --port 502 --vendor V --product P --version X --name HOSTNAME

Holding registers 1..16 (as clients count them, e.g. `mbpoll -r 1 -c 4`) hold a
process image that drifts a little every second, coils 1..8 the outputs, and
function 43/14 answers the device identification given on the command line.
"""
import argparse
import asyncio
import logging
import sys
import types

# pymodbus 3.0's server module imports pyserial unconditionally, and Debian does
# not pull python3-serial in; the lab only serves TCP, so stand-ins suffice.
for missing in ("serial", "serial_asyncio"):
    try:
        __import__(missing)
    except ImportError:
        stub = types.ModuleType(missing)
        stub.create_serial_connection = None
        stub.serialutil = types.SimpleNamespace(SerialException=Exception)
        sys.modules[missing] = stub

from pymodbus.datastore import (  # noqa: E402
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.device import ModbusDeviceIdentification  # noqa: E402
from pymodbus.server import StartAsyncTcpServer  # noqa: E402

# Setpoint, process value, motor speed, pressure, then counters.
INITIAL = [100, 98, 1450, 327, 0, 0, 0, 0, 12, 34, 56, 78, 0, 0, 0, 1]


async def drift(store):
    """Move the process value and a counter, as a running process would."""
    tick = 0
    while True:
        await asyncio.sleep(1)
        tick += 1
        values = store.getValues(3, 0, count=len(INITIAL))
        values[1] = 95 + (tick % 7)
        values[4] = tick % 65536
        store.setValues(3, 0, values)


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=502)
    parser.add_argument("--vendor", default="gemelo lab")
    parser.add_argument("--product", default="PLC")
    parser.add_argument("--version", default="1.0")
    parser.add_argument("--name", default="plc")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)

    # pymodbus 3.0 blocks start at address 0 but clients count from 1: one
    # padding register in front makes `-r 1` read INITIAL[0].
    store = ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, [0] * 17),
        co=ModbusSequentialDataBlock(0, [0, 1, 0, 1, 1, 0, 0, 0, 0]),
        hr=ModbusSequentialDataBlock(0, [0] + INITIAL),
        ir=ModbusSequentialDataBlock(0, [0] + INITIAL),
        zero_mode=False,
    )
    context = ModbusServerContext(slaves=store, single=True)
    identity = ModbusDeviceIdentification(
        info_name={
            "VendorName": args.vendor,
            "ProductCode": args.product.split()[-1],
            "VendorUrl": "http://example.net/",
            "ProductName": args.product,
            "ModelName": args.product,
            "MajorMinorRevision": args.version,
        }
    )
    asyncio.get_running_loop().create_task(drift(store))
    logging.info("%s: Modbus/TCP on port %d", args.name, args.port)
    await StartAsyncTcpServer(context=context, identity=identity, address=("0.0.0.0", args.port))


if __name__ == "__main__":
    asyncio.run(main())
