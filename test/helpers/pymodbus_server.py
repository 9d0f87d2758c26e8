"""pymodbus 3.0 (Debian python3-pymodbus) serving a register image, for tests.

usage: /usr/bin/python3 pymodbus_server.py IMAGE.json tcp            -> prints {"port": N} once listening
       /usr/bin/python3 pymodbus_server.py IMAGE.json rtu PTY_PATH   -> prints {"ready": true} once the pty is open

IMAGE.json: {"hr": {"40000": [..registers..]}, "ir": {...}, "co": {"0": [true, ...]}, "di": {...}}
(keys are zero-based protocol addresses; ModbusSlaveContext(zero_mode=True)). A single context
answers every unit id. The request handling (decoding, datastore, exceptions, framing) is pymodbus's;
this script only moves bytes for RTU, because Debian's pymodbus serial server needs pyserial.
"""
import asyncio, json, os, select, sys, termios, tty, types

# pymodbus.server imports pyserial modules at import time; TCP does not use them.
for _name in ("serial", "serial_asyncio"):
    if _name not in sys.modules:
        try:
            __import__(_name)
        except ImportError:
            _m = types.ModuleType(_name)
            _m.create_serial_connection = None
            sys.modules[_name] = _m

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock  # noqa: E402
from pymodbus.factory import ServerDecoder  # noqa: E402
from pymodbus.server.async_io import ModbusTcpServer  # noqa: E402
from pymodbus.transaction import ModbusRtuFramer  # noqa: E402


def block(spec):
    values = {}
    for start, regs in (spec or {}).items():
        for i, v in enumerate(regs):
            values[int(start) + i] = v
    return ModbusSparseDataBlock(values if values else {0: 0})


def context(image):
    slave = ModbusSlaveContext(hr=block(image.get("hr")), ir=block(image.get("ir")),
                               co=block(image.get("co")), di=block(image.get("di")), zero_mode=True)
    return ModbusServerContext(slaves=slave, single=True)


async def serve_tcp(ctx):
    server = ModbusTcpServer(ctx, address=("127.0.0.1", 0), allow_reuse_address=True)
    task = asyncio.ensure_future(server.serve_forever())
    while server.server is None:
        await asyncio.sleep(0.01)
    print(json.dumps({"port": server.server.sockets[0].getsockname()[1]}), flush=True)
    await task


def serve_rtu(ctx, path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = termios.B9600
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    framer = ModbusRtuFramer(ServerDecoder())
    print(json.dumps({"ready": True}), flush=True)

    def handle(request):
        response = request.execute(ctx[request.unit_id])
        response.transaction_id = request.transaction_id
        response.unit_id = request.unit_id
        os.write(fd, framer.buildPacket(response))

    while True:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            data = os.read(fd, 512)
            if data:
                framer.processIncomingPacket(data, handle, unit=0, single=True)


def main():
    with open(sys.argv[1]) as f:
        ctx = context(json.load(f))
    if sys.argv[2] == "tcp":
        asyncio.run(serve_tcp(ctx))
    else:
        serve_rtu(ctx, sys.argv[3])


if __name__ == "__main__":
    main()
