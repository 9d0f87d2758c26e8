/**
 * A SunSpec image built by the library (buildImage), served by pymodbus (written by others) over
 * TCP and over RTU on a socat pty pair, read with modbus-serial and decoded by decodeModel.
 */
import ModbusRTU from 'modbus-serial';
import { buildImage, decodeModel, getModel, SUNS_MARKER } from '../../components/modbus-adapter/sunspec';
import { startPymodbusRtu, startPymodbusTcp } from '../helpers/pymodbus';

const image = buildImage([
  { id: 1, values: { points: { Mn: 'pymodbus', Md: 'IMAGE', SN: 'PM-1' } } },
  {
    id: 103,
    scaleFactors: { A_SF: -2, W_SF: 1, WH_SF: 0, Tmp_SF: -1 },
    values: { points: { A: 12.34, W: 41230, WH: 987654, TmpCab: -5.5, St: 'THROTTLED', Evt1: 'OVER_TEMP' } },
  },
  { id: 160, scaleFactors: { DCA_SF: -2 }, values: { groups: { module: [{ DCA: 1.5 }, { DCA: 2.5 }, { DCA: 0 }] } } },
]);

async function readAndDecode(client: ModbusRTU): Promise<Map<number, ReturnType<typeof decodeModel>>> {
  client.setID(1);
  expect((await client.readHoldingRegisters(40000, 2)).data).toEqual([...SUNS_MARKER]);
  const out = new Map<number, ReturnType<typeof decodeModel>>();
  let addr = 40002;
  for (;;) {
    const [id, len] = (await client.readHoldingRegisters(addr, 2)).data;
    if (id === 0xffff) break;
    out.set(id, decodeModel(getModel(id)!, (await client.readHoldingRegisters(addr + 2, len)).data));
    addr += 2 + len;
  }
  return out;
}

function check(models: Map<number, ReturnType<typeof decodeModel>>): void {
  expect([...models.keys()]).toEqual([1, 103, 160]);
  expect(models.get(1)!.points.Mn.value).toBe('pymodbus');
  const inv = models.get(103)!.points;
  expect(inv.A.value).toBe(12.34);
  expect(inv.W.value).toBe(41230);
  expect(inv.WH.value).toBe(987654);
  expect(inv.TmpCab.value).toBe(-5.5);
  expect(inv.St.symbol).toBe('THROTTLED');
  expect(inv.Evt1.bits).toEqual(['OVER_TEMP']);
  expect(inv.VA.implemented).toBe(false);
  expect(models.get(160)!.groups.module.map((m) => m.DCA.value)).toEqual([1.5, 2.5, 0]);
}

describe('SunSpec image served by pymodbus', () => {
  it('over TCP', async () => {
    const peer = await startPymodbusTcp({ hr: { 40000: image } });
    const client = new ModbusRTU();
    try {
      await client.connectTCP('127.0.0.1', { port: peer.port });
      client.setTimeout(2000);
      check(await readAndDecode(client));
      // Outside the image pymodbus answers exception 2 (illegal data address).
      await expect(client.readHoldingRegisters(0, 2)).rejects.toMatchObject({ modbusCode: 2 });
    } finally {
      await new Promise<void>((done) => client.close(() => done()));
      await peer.stop();
    }
  });

  it('over RTU on a pseudo-terminal pair', async () => {
    const peer = await startPymodbusRtu({ hr: { 40000: image } });
    const client = new ModbusRTU();
    try {
      await client.connectRTUBuffered(peer.clientPath, { baudRate: 9600 });
      client.setTimeout(2000);
      check(await readAndDecode(client));
    } finally {
      await new Promise<void>((done) => client.close(() => done()));
      await peer.stop();
    }
  });
});
