/**
 * Every SunSpec model definition in ./models (the SunSpec Alliance's information model library,
 * github.com/sunspec/models `json/`, Apache License 2.0; see models/NOTICE.md), as the published
 * JSON. Static imports so that esbuild embeds them in the component bundle: the component ships
 * no data files and reads nothing from disk. A file added to ./models must be added here too
 * (test/unit/sunspec.test.ts fails for a model file that is not loaded).
 */
import m1 from './models/model_1.json';
import m2 from './models/model_2.json';
import m3 from './models/model_3.json';
import m4 from './models/model_4.json';
import m5 from './models/model_5.json';
import m6 from './models/model_6.json';
import m7 from './models/model_7.json';
import m8 from './models/model_8.json';
import m9 from './models/model_9.json';
import m10 from './models/model_10.json';
import m11 from './models/model_11.json';
import m12 from './models/model_12.json';
import m13 from './models/model_13.json';
import m14 from './models/model_14.json';
import m15 from './models/model_15.json';
import m16 from './models/model_16.json';
import m17 from './models/model_17.json';
import m18 from './models/model_18.json';
import m19 from './models/model_19.json';
import m101 from './models/model_101.json';
import m102 from './models/model_102.json';
import m103 from './models/model_103.json';
import m111 from './models/model_111.json';
import m112 from './models/model_112.json';
import m113 from './models/model_113.json';
import m120 from './models/model_120.json';
import m121 from './models/model_121.json';
import m122 from './models/model_122.json';
import m123 from './models/model_123.json';
import m124 from './models/model_124.json';
import m125 from './models/model_125.json';
import m126 from './models/model_126.json';
import m127 from './models/model_127.json';
import m128 from './models/model_128.json';
import m129 from './models/model_129.json';
import m130 from './models/model_130.json';
import m131 from './models/model_131.json';
import m132 from './models/model_132.json';
import m133 from './models/model_133.json';
import m134 from './models/model_134.json';
import m135 from './models/model_135.json';
import m136 from './models/model_136.json';
import m137 from './models/model_137.json';
import m138 from './models/model_138.json';
import m139 from './models/model_139.json';
import m140 from './models/model_140.json';
import m141 from './models/model_141.json';
import m142 from './models/model_142.json';
import m143 from './models/model_143.json';
import m144 from './models/model_144.json';
import m145 from './models/model_145.json';
import m160 from './models/model_160.json';
import m201 from './models/model_201.json';
import m202 from './models/model_202.json';
import m203 from './models/model_203.json';
import m204 from './models/model_204.json';
import m211 from './models/model_211.json';
import m212 from './models/model_212.json';
import m213 from './models/model_213.json';
import m214 from './models/model_214.json';
import m220 from './models/model_220.json';
import m302 from './models/model_302.json';
import m303 from './models/model_303.json';
import m304 from './models/model_304.json';
import m305 from './models/model_305.json';
import m306 from './models/model_306.json';
import m307 from './models/model_307.json';
import m308 from './models/model_308.json';
import m401 from './models/model_401.json';
import m402 from './models/model_402.json';
import m403 from './models/model_403.json';
import m404 from './models/model_404.json';
import m501 from './models/model_501.json';
import m502 from './models/model_502.json';
import m601 from './models/model_601.json';
import m701 from './models/model_701.json';
import m702 from './models/model_702.json';
import m703 from './models/model_703.json';
import m704 from './models/model_704.json';
import m705 from './models/model_705.json';
import m706 from './models/model_706.json';
import m707 from './models/model_707.json';
import m708 from './models/model_708.json';
import m709 from './models/model_709.json';
import m710 from './models/model_710.json';
import m711 from './models/model_711.json';
import m712 from './models/model_712.json';
import m713 from './models/model_713.json';
import m714 from './models/model_714.json';
import m715 from './models/model_715.json';
import m801 from './models/model_801.json';
import m802 from './models/model_802.json';
import m803 from './models/model_803.json';
import m804 from './models/model_804.json';
import m805 from './models/model_805.json';
import m806 from './models/model_806.json';
import m807 from './models/model_807.json';
import m808 from './models/model_808.json';
import m809 from './models/model_809.json';
import m63001 from './models/model_63001.json';
import m63002 from './models/model_63002.json';
import m64001 from './models/model_64001.json';
import m64020 from './models/model_64020.json';
import m64101 from './models/model_64101.json';
import m64111 from './models/model_64111.json';
import m64112 from './models/model_64112.json';
import m64410 from './models/model_64410.json';
import m64411 from './models/model_64411.json';
import m64412 from './models/model_64412.json';
import m64413 from './models/model_64413.json';
import m64414 from './models/model_64414.json';
import m64415 from './models/model_64415.json';

/** The JSON files as imported, in model id order. Their shape is checked by models.ts when it loads them. */
export const MODEL_FILES: readonly unknown[] = [
  m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15, m16, m17, m18, m19, m101, m102, m103,
  m111, m112, m113, m120, m121, m122, m123, m124, m125, m126, m127, m128, m129, m130, m131, m132, m133, m134,
  m135, m136, m137, m138, m139, m140, m141, m142, m143, m144, m145, m160, m201, m202, m203, m204, m211, m212,
  m213, m214, m220, m302, m303, m304, m305, m306, m307, m308, m401, m402, m403, m404, m501, m502, m601, m701,
  m702, m703, m704, m705, m706, m707, m708, m709, m710, m711, m712, m713, m714, m715, m801, m802, m803, m804,
  m805, m806, m807, m808, m809, m63001, m63002, m64001, m64020, m64101, m64111, m64112, m64410, m64411,
  m64412, m64413, m64414, m64415
];
