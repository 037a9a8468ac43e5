package xllm.tensor.pickle;

import xllm.tensor.DType;

/**
 * The whitelist of pickle globals a torch state dict may name. A GLOBAL or STACK_GLOBAL opcode naming anything else
 * is refused by {@link RestrictedUnpickler} before any later opcode runs; a name on this list is never imported or
 * called either, it only selects one of the fixed Java behaviours in {@link RestrictedUnpickler}. The list matches
 * the subset of torch's own {@code weights_only} allowlist that state dicts produced by {@code torch.save} use;
 * {@code TorchCheckpointTest} checks refusals of {@code os.system}, {@code eval}, {@code Popen} and friends.
 */
enum TorchGlobal {
    ORDERED_DICT("collections", "OrderedDict", null),
    REBUILD_TENSOR_V2("torch._utils", "_rebuild_tensor_v2", null),
    REBUILD_TENSOR("torch._utils", "_rebuild_tensor", null),
    REBUILD_PARAMETER("torch._utils", "_rebuild_parameter", null),
    REBUILD_PARAMETER_WITH_STATE("torch._utils", "_rebuild_parameter_with_state", null),
    SIZE("torch", "Size", null),
    FLOAT_STORAGE("torch", "FloatStorage", DType.F32),
    HALF_STORAGE("torch", "HalfStorage", DType.F16),
    BFLOAT16_STORAGE("torch", "BFloat16Storage", DType.BF16),
    DOUBLE_STORAGE("torch", "DoubleStorage", DType.F64),
    LONG_STORAGE("torch", "LongStorage", DType.I64),
    INT_STORAGE("torch", "IntStorage", DType.I32),
    SHORT_STORAGE("torch", "ShortStorage", DType.I16),
    CHAR_STORAGE("torch", "CharStorage", DType.I8),
    BYTE_STORAGE("torch", "ByteStorage", DType.U8),
    BOOL_STORAGE("torch", "BoolStorage", DType.BOOL);

    final String module;
    final String name;
    /** Element type of a storage class; null for the callables. */
    final DType storageType;

    TorchGlobal(String module, String name, DType storageType) {
        this.module = module;
        this.name = name;
        this.storageType = storageType;
    }

    /** The whitelisted global with exactly this module and name, or null: no prefix, alias or attribute matching. */
    static TorchGlobal find(String module, String name) {
        for (TorchGlobal global : values()) {
            if (global.module.equals(module) && global.name.equals(name)) return global;
        }
        return null;
    }

    String qualifiedName() {
        return module + "." + name;
    }
}
