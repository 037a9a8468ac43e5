package xllm.tensor.pickle;

import xllm.tensor.DType;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pickle virtual machine (protocols 2 to 5, the opcode semantics of CPython's {@code pickle._Unpickler}) restricted
 * to what {@code torch.save} writes for a state dict. Globals resolve against {@link TorchGlobal}'s whitelist and are
 * never imported; REDUCE/NEWOBJ/BUILD on a whitelisted global run a fixed Java behaviour (make a map, describe a
 * tensor view) instead of calling anything. Opcodes outside the implemented set, including INST/OBJ/EXT and the
 * protocol-0 text forms, are refused like a forbidden global. Python values map to Java as: None to null, int to
 * Long (BigInteger beyond 64 bits), float to Double, str to String, bytes to byte[], list to ArrayList, tuple to
 * {@link Tuple}, dict to LinkedHashMap. Tested through {@code TorchCheckpointTest} against files written by torch.
 */
final class RestrictedUnpickler {

    /** A Python tuple, kept apart from lists so argument tuples and persistent ids can be type-checked. */
    record Tuple(List<Object> items) {
        Tuple {
            items = Collections.unmodifiableList(new ArrayList<>(items)); // ArrayList because elements may be None
        }

        int size() {
            return items.size();
        }

        Object get(int index) {
            return items.get(index);
        }
    }

    /** A run of a saved storage: the key naming its bytes, element type, first element and element count. */
    record StorageRef(String key, DType dtype, long elementOffset, long elementCount) {}

    /** What {@code torch._utils._rebuild_tensor_v2} would build: a strided view into a storage, all in elements. */
    record TensorRef(StorageRef storage, long storageOffset, long[] shape, long[] stride) {}

    /** Turns a BINPERSID id into a storage; zip and legacy torch.save spell their ids differently. */
    interface PersistentLoader {
        StorageRef load(Tuple persistentId, String where) throws IOException;
    }

    // Opcodes torch.save emits (pickle protocols 2 to 5); everything else is refused.
    private static final int MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2';
    private static final int BININT = 'J', BININT1 = 'K', BININT2 = 'M', NONE = 'N', BINFLOAT = 'G';
    private static final int BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U';
    private static final int BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd';
    private static final int EMPTY_DICT = '}', APPENDS = 'e', BINGET = 'h', LONG_BINGET = 'j', LIST = 'l';
    private static final int EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't';
    private static final int EMPTY_TUPLE = ')', SETITEMS = 'u', BINBYTES = 'B', SHORT_BINBYTES = 'C';
    private static final int PROTO = 0x80, NEWOBJ = 0x81, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87;
    private static final int NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b;
    private static final int SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e;
    private static final int STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95;

    /** Names of the pickle opcodes this machine refuses, so a refusal says what the file tried. */
    private static final Map<Integer, String> REFUSED_OPCODE_NAMES = Map.ofEntries(
            Map.entry((int) 'i', "INST"), Map.entry((int) 'o', "OBJ"), Map.entry((int) 'P', "PERSID"),
            Map.entry((int) 'I', "INT"), Map.entry((int) 'L', "LONG"), Map.entry((int) 'S', "STRING"),
            Map.entry((int) 'V', "UNICODE"), Map.entry((int) 'F', "FLOAT"), Map.entry((int) 'g', "GET"),
            Map.entry((int) 'p', "PUT"), Map.entry(0x82, "EXT1"), Map.entry(0x83, "EXT2"), Map.entry(0x84, "EXT4"),
            Map.entry(0x8f, "EMPTY_SET"), Map.entry(0x90, "ADDITEMS"), Map.entry(0x91, "FROZENSET"),
            Map.entry(0x92, "NEWOBJ_EX"), Map.entry(0x96, "BYTEARRAY8"), Map.entry(0x97, "NEXT_BUFFER"),
            Map.entry(0x98, "READONLY_BUFFER"));

    /** Longest GLOBAL module or name line accepted; real ones are a few dozen characters. */
    private static final int MAX_GLOBAL_LINE = 1024;

    private final ByteBuffer input;
    private final int start;
    private final long reportedStart;
    private final String source;
    private final PersistentLoader persistentLoader;
    private final ArrayList<Object> stack = new ArrayList<>();
    private final ArrayList<Integer> marks = new ArrayList<>();
    private final HashMap<Long, Object> memo = new HashMap<>();
    private long opcodeOffset;

    /**
     * @param input          pickle bytes from its position on; the position advances past STOP
     * @param reportedStart  byte offset that {@code input}'s position has in what {@code source} names
     * @param source         the file (and zip entry) for error messages
     */
    RestrictedUnpickler(ByteBuffer input, long reportedStart, String source, PersistentLoader persistentLoader) {
        this.input = input.order(ByteOrder.LITTLE_ENDIAN);
        this.start = input.position();
        this.reportedStart = reportedStart;
        this.source = source;
        this.persistentLoader = persistentLoader;
    }

    /** Runs the pickle up to its STOP opcode and returns the object it built. */
    Object load() throws IOException {
        while (true) {
            opcodeOffset = reportedStart + (input.position() - start);
            if (!input.hasRemaining()) throw truncated("the pickle ends before its STOP opcode");
            int opcode = input.get() & 0xff;
            switch (opcode) {
                case PROTO -> {
                    int protocol = readUnsignedByte();
                    if (protocol < 2 || protocol > 5) throw malformed("unsupported pickle protocol " + protocol);
                }
                case FRAME -> {
                    // Frames only group opcodes for buffered readers; the bytes are all here already.
                    long frameLength = readUnsignedLong();
                    need(frameLength);
                }
                case STOP -> {
                    Object result = pop();
                    if (!stack.isEmpty() || !marks.isEmpty()) throw malformed("STOP with values left on the stack");
                    return result;
                }
                case MARK -> marks.add(stack.size());
                case POP -> {
                    if (stack.size() > markBoundary()) stack.remove(stack.size() - 1);
                    else popMark(); // CPython: POP at a mark discards the mark
                }
                case POP_MARK -> popMark();
                case DUP -> push(peek());
                case EMPTY_DICT -> push(new LinkedHashMap<Object, Object>());
                case EMPTY_LIST -> push(new ArrayList<Object>());
                case EMPTY_TUPLE -> push(new Tuple(List.of()));
                case TUPLE -> push(new Tuple(popMark()));
                case TUPLE1 -> push(new Tuple(popItems(1)));
                case TUPLE2 -> push(new Tuple(popItems(2)));
                case TUPLE3 -> push(new Tuple(popItems(3)));
                case LIST -> push(new ArrayList<>(popMark()));
                case DICT -> {
                    LinkedHashMap<Object, Object> dict = new LinkedHashMap<>();
                    putPairs(dict, popMark());
                    push(dict);
                }
                case BINUNICODE -> push(utf8(readUnsignedInt()));
                case SHORT_BINUNICODE -> push(utf8(readUnsignedByte()));
                case BINUNICODE8 -> push(utf8(readUnsignedLong()));
                // Python 2 str: torch.load decodes these as text too (encoding="latin1" in the legacy loader).
                case BINSTRING -> push(latin1(readSignedLength()));
                case SHORT_BINSTRING -> push(latin1(readUnsignedByte()));
                case BINBYTES -> push(readBytes(readUnsignedInt()));
                case SHORT_BINBYTES -> push(readBytes(readUnsignedByte()));
                case BINBYTES8 -> push(readBytes(readUnsignedLong()));
                case BININT -> {
                    need(4);
                    push((long) input.getInt());
                }
                case BININT1 -> push((long) readUnsignedByte());
                case BININT2 -> {
                    need(2);
                    push((long) (input.getShort() & 0xffff));
                }
                case LONG1 -> push(littleEndianInteger(readUnsignedByte()));
                case LONG4 -> push(littleEndianInteger(readSignedLength()));
                case BINFLOAT -> {
                    need(8);
                    push(input.order(ByteOrder.BIG_ENDIAN).getDouble()); // the one big-endian field in pickle
                    input.order(ByteOrder.LITTLE_ENDIAN);
                }
                case NONE -> push(null);
                case NEWTRUE -> push(Boolean.TRUE);
                case NEWFALSE -> push(Boolean.FALSE);
                case BINPUT -> memo.put((long) readUnsignedByte(), peek());
                case LONG_BINPUT -> memo.put(readUnsignedInt(), peek());
                case MEMOIZE -> memo.put((long) memo.size(), peek());
                case BINGET -> push(memoGet(readUnsignedByte()));
                case LONG_BINGET -> push(memoGet(readUnsignedInt()));
                case SETITEM -> {
                    Object value = pop();
                    Object key = pop();
                    dictOnTop("SETITEM").put(key, value);
                }
                case SETITEMS -> {
                    List<Object> items = popMark();
                    putPairs(dictOnTop("SETITEMS"), items);
                }
                case APPEND -> {
                    Object value = pop();
                    listOnTop("APPEND").add(value);
                }
                case APPENDS -> {
                    List<Object> items = popMark();
                    listOnTop("APPENDS").addAll(items);
                }
                case GLOBAL -> push(resolveGlobal(readLine(), readLine()));
                case STACK_GLOBAL -> {
                    Object name = pop();
                    Object module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw malformed("STACK_GLOBAL needs two strings, got " + describe(module) + " and " + describe(name));
                    }
                    push(resolveGlobal(m, n));
                }
                case REDUCE -> {
                    Object arguments = pop();
                    Object callable = pop();
                    push(reduce(callable, arguments));
                }
                case NEWOBJ -> {
                    Object arguments = pop();
                    Object type = pop();
                    // cls.__new__(cls, *args): only OrderedDict is ever built this way, and it takes no arguments.
                    if (type != TorchGlobal.ORDERED_DICT || !(arguments instanceof Tuple t) || t.size() != 0) {
                        throw malformed("NEWOBJ of " + describe(type) + " is not part of a state dict");
                    }
                    push(new LinkedHashMap<Object, Object>());
                }
                case BUILD -> {
                    pop(); // the state
                    Object target = peek();
                    // OrderedDict state is its attribute dict (torch stores the _metadata version table there);
                    // tensors never need it, so dropping it is safe. Anything else has no place in a state dict.
                    if (!(target instanceof Map)) throw malformed("BUILD on " + describe(target) + " is not supported");
                }
                case BINPERSID -> {
                    Object id = pop();
                    if (!(id instanceof Tuple tuple)) throw malformed("persistent id is " + describe(id) + ", not a tuple");
                    push(persistentLoader.load(tuple, "persistent id at byte offset " + opcodeOffset));
                }
                default -> {
                    String name = REFUSED_OPCODE_NAMES.getOrDefault(opcode, "unknown");
                    String printable = opcode >= 0x20 && opcode < 0x7f ? " '" + (char) opcode + "'" : "";
                    throw new RefusedPickleException(source,
                            String.format("opcode 0x%02x%s (%s)", opcode, printable, name), opcodeOffset,
                            "not an opcode a torch state dict uses");
                }
            }
        }
    }

    /** Offset just past the STOP opcode, where a legacy torch.save file continues with its next pickle. */
    long endOffset() {
        return reportedStart + (input.position() - start);
    }

    private TorchGlobal resolveGlobal(String module, String name) throws IOException {
        TorchGlobal global = TorchGlobal.find(module, name);
        if (global != null) return global;
        String why = "not on the torch state-dict whitelist";
        if (module.startsWith("__torch__")) why += "; this looks like a TorchScript archive, not a torch.save state dict";
        else if (module.startsWith("torch.nn.modules") || module.equals("__main__")) {
            why += "; the checkpoint pickles a whole model object, re-save it as model.state_dict()";
        }
        throw new RefusedPickleException(source, "global '" + module + "." + name + "'", opcodeOffset, why);
    }

    /** REDUCE on a whitelisted global: a fixed Java behaviour per global, never a call into anything. */
    private Object reduce(Object callable, Object argumentsValue) throws IOException {
        if (!(callable instanceof TorchGlobal global)) {
            throw malformed("REDUCE calls " + describe(callable) + "; only whitelisted globals may be reduced");
        }
        if (!(argumentsValue instanceof Tuple arguments)) {
            throw malformed("REDUCE arguments of " + global.qualifiedName() + " are " + describe(argumentsValue));
        }
        switch (global) {
            case ORDERED_DICT -> {
                // OrderedDict.__reduce__ passes no arguments; its items follow as SETITEMS.
                if (arguments.size() != 0) throw malformed("OrderedDict with constructor arguments");
                return new LinkedHashMap<Object, Object>();
            }
            case REBUILD_TENSOR_V2 -> {
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (arguments.size() != 6 && arguments.size() != 7) throw arity(global, arguments);
                return tensor(arguments);
            }
            case REBUILD_TENSOR -> {
                if (arguments.size() != 4) throw arity(global, arguments); // (storage, storage_offset, size, stride)
                return tensor(arguments);
            }
            case REBUILD_PARAMETER, REBUILD_PARAMETER_WITH_STATE -> {
                // (data, requires_grad, backward_hooks[, state]): a parameter is its data tensor here.
                int expected = global == TorchGlobal.REBUILD_PARAMETER ? 3 : 4;
                if (arguments.size() != expected || !(arguments.get(0) instanceof TensorRef data)) {
                    throw arity(global, arguments);
                }
                return data;
            }
            case SIZE -> {
                if (arguments.size() != 1 || !(arguments.get(0) instanceof Tuple dimensions)) throw arity(global, arguments);
                return dimensions;
            }
            default -> throw malformed(global.qualifiedName() + " is a storage type, not something to call");
        }
    }

    private TensorRef tensor(Tuple arguments) throws IOException {
        if (!(arguments.get(0) instanceof StorageRef storage)) {
            throw malformed("tensor storage is " + describe(arguments.get(0)) + ", not a persistent storage id");
        }
        long storageOffset = integer(arguments.get(1), "storage offset");
        long[] shape = integers(arguments.get(2), "size");
        long[] stride = integers(arguments.get(3), "stride");
        if (shape.length != stride.length) {
            throw malformed("tensor size has " + shape.length + " dimensions but stride has " + stride.length);
        }
        return new TensorRef(storage, storageOffset, shape, stride);
    }

    private long integer(Object value, String what) throws IOException {
        if (value instanceof Long number) return number;
        throw malformed("tensor " + what + " is " + describe(value) + ", not a 64-bit integer");
    }

    private long[] integers(Object value, String what) throws IOException {
        if (!(value instanceof Tuple tuple)) throw malformed("tensor " + what + " is " + describe(value) + ", not a tuple");
        long[] result = new long[tuple.size()];
        for (int i = 0; i < result.length; i++) result[i] = integer(tuple.get(i), what);
        return result;
    }

    private IOException arity(TorchGlobal global, Tuple arguments) {
        return malformed(global.qualifiedName() + " with unexpected arguments (" + arguments.size() + " of them)");
    }

    // --- stack and memo --------------------------------------------------------------------------------------

    private void push(Object value) {
        stack.add(value);
    }

    private int markBoundary() {
        return marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
    }

    private Object pop() throws IOException {
        if (stack.size() <= markBoundary()) throw malformed("stack underflow");
        return stack.remove(stack.size() - 1);
    }

    private Object peek() throws IOException {
        if (stack.size() <= markBoundary()) throw malformed("stack underflow");
        return stack.get(stack.size() - 1);
    }

    private List<Object> popItems(int count) throws IOException {
        if (stack.size() - markBoundary() < count) throw malformed("stack underflow");
        List<Object> top = stack.subList(stack.size() - count, stack.size());
        List<Object> items = new ArrayList<>(top);
        top.clear();
        return items;
    }

    private List<Object> popMark() throws IOException {
        if (marks.isEmpty()) throw malformed("no MARK to pop to");
        int mark = marks.remove(marks.size() - 1);
        List<Object> top = stack.subList(mark, stack.size());
        List<Object> items = new ArrayList<>(top);
        top.clear();
        return items;
    }

    private Object memoGet(long index) throws IOException {
        if (!memo.containsKey(index)) throw malformed("memo entry " + index + " read before it was stored");
        return memo.get(index);
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dictOnTop(String opcode) throws IOException {
        Object top = peek();
        if (top instanceof Map) return (Map<Object, Object>) top;
        throw malformed(opcode + " on " + describe(top));
    }

    @SuppressWarnings("unchecked")
    private List<Object> listOnTop(String opcode) throws IOException {
        Object top = peek();
        if (top instanceof ArrayList) return (List<Object>) top;
        throw malformed(opcode + " on " + describe(top));
    }

    private void putPairs(Map<Object, Object> dict, List<Object> items) throws IOException {
        if (items.size() % 2 != 0) throw malformed("odd number of items for a dict");
        for (int i = 0; i < items.size(); i += 2) dict.put(items.get(i), items.get(i + 1));
    }

    // --- reading ---------------------------------------------------------------------------------------------

    private void need(long count) throws IOException {
        if (count < 0 || count > input.remaining()) {
            throw truncated("the opcode needs " + count + " more bytes but " + input.remaining() + " remain");
        }
    }

    private int readUnsignedByte() throws IOException {
        need(1);
        return input.get() & 0xff;
    }

    private long readUnsignedInt() throws IOException {
        need(4);
        return input.getInt() & 0xffffffffL;
    }

    private long readUnsignedLong() throws IOException {
        need(8);
        long value = input.getLong();
        if (value < 0) throw truncated("length " + Long.toUnsignedString(value) + " exceeds the file");
        return value;
    }

    private long readSignedLength() throws IOException {
        need(4);
        int length = input.getInt();
        if (length < 0) throw malformed("negative length " + length);
        return length;
    }

    private byte[] readBytes(long count) throws IOException {
        need(count);
        byte[] bytes = new byte[(int) count];
        input.get(bytes);
        return bytes;
    }

    private String utf8(long count) throws IOException {
        return new String(readBytes(count), StandardCharsets.UTF_8);
    }

    private String latin1(long count) throws IOException {
        return new String(readBytes(count), StandardCharsets.ISO_8859_1);
    }

    /** Two's-complement little-endian integer of LONG1/LONG4. */
    private Object littleEndianInteger(long count) throws IOException {
        byte[] littleEndian = readBytes(count);
        if (littleEndian.length == 0) return 0L;
        byte[] bigEndian = new byte[littleEndian.length];
        for (int i = 0; i < littleEndian.length; i++) bigEndian[i] = littleEndian[littleEndian.length - 1 - i];
        BigInteger value = new BigInteger(bigEndian);
        return value.bitLength() < 64 ? (Object) value.longValue() : value;
    }

    private String readLine() throws IOException {
        StringBuilder line = new StringBuilder();
        while (true) {
            int next = readUnsignedByte();
            if (next == '\n') return new String(line.toString().getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
            if (line.length() >= MAX_GLOBAL_LINE) throw malformed("GLOBAL name longer than " + MAX_GLOBAL_LINE + " bytes");
            line.append((char) next);
        }
    }

    // --- errors ----------------------------------------------------------------------------------------------

    private IOException truncated(String what) {
        return new IOException(source + ": truncated pickle at byte offset " + opcodeOffset + ": " + what);
    }

    private IOException malformed(String what) {
        return new IOException(source + ": malformed state-dict pickle at byte offset " + opcodeOffset + ": " + what);
    }

    private static String describe(Object value) {
        if (value == null) return "None";
        if (value instanceof TorchGlobal global) return global.qualifiedName();
        if (value instanceof String text) return "str '" + (text.length() > 40 ? text.substring(0, 40) + "…" : text) + "'";
        return value.getClass().getSimpleName();
    }
}
