package xllm.tensor;

import ai.djl.ndarray.types.DataType;

/** Element types that checkpoint files carry, with their safetensors names and byte widths. */
public enum DType {
    F64("F64", 8, DataType.FLOAT64),
    F32("F32", 4, DataType.FLOAT32),
    F16("F16", 2, DataType.FLOAT16),
    BF16("BF16", 2, DataType.BFLOAT16),
    I64("I64", 8, DataType.INT64),
    I32("I32", 4, DataType.INT32),
    I16("I16", 2, DataType.INT16),
    I8("I8", 1, DataType.INT8),
    U8("U8", 1, DataType.UINT8),
    BOOL("BOOL", 1, DataType.BOOLEAN);

    public final String safetensorsName;
    public final int bytes;
    public final DataType djl;

    DType(String safetensorsName, int bytes, DataType djl) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
        this.djl = djl;
    }

    public static DType fromSafetensors(String name) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(name)) return t;
        }
        throw new IllegalArgumentException("unsupported safetensors dtype '" + name + "'");
    }

    public static DType fromDjl(DataType type) {
        for (DType t : values()) {
            if (t.djl == type) return t;
        }
        throw new IllegalArgumentException("no checkpoint dtype for DJL type " + type);
    }
}
