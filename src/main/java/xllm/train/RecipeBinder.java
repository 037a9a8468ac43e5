package xllm.train;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.DoubleNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.LongNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import xllm.train.StageConfig.Doc;
import xllm.train.StageConfig.SetByLoad;
import xllm.train.StageConfig.Variant;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import static xllm.train.StageConfig.idOf;

/**
 * The generic half of {@link StageConfig}: binds a parsed recipe tree onto records (strictly, every problem recorded
 * with its key path), applies {@code key=value} overrides typed by the field they name, lists every key for the help
 * text and turns a record back into a tree. It knows nothing about training: the keys, types, defaults and meanings
 * all come from the record components and their {@link Doc} annotations.
 *
 * <p>Supported component types: String, Path, int/Integer, long/Long, double/Double, boolean, enums (YAML ids via
 * {@link StageConfig#idOf}), {@code List<T>}, {@code Map<String, String>}, nested records, and sealed interfaces of
 * records picked by a {@code type} key ({@link Variant}).
 */
final class RecipeBinder {

    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    static final ObjectMapper JSON = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    // ---------------------------------------------------------------------------------------------------------------
    // Overrides: key=value applied to the tree, the value typed by the field the key names
    // ---------------------------------------------------------------------------------------------------------------

    private static final Pattern INTEGER = Pattern.compile("[-+]?\\d+");
    private static final Pattern NUMBER = Pattern.compile("[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?");

    /** Sets the key an override names in {@code root} (a tree for {@code rootType}), or records why it cannot. */
    static void applyOverride(ObjectNode root, Class<?> rootType, String override, Problems problems) {
        int eq = override.indexOf('=');
        if (eq <= 0) {
            problems.addRaw("override \"" + override + "\": expected key=value, e.g. steps=100 or schedule.initLr=3e-4");
            return;
        }
        String key = override.substring(0, eq).trim();
        String text = override.substring(eq + 1).trim();
        String[] segments = key.split("\\.", -1);
        Type target = rootType;
        JsonNode cursor = root;
        for (int i = 0; i < segments.length; i++) {
            String segment = segments[i];
            String sofar = String.join(".", Arrays.copyOf(segments, i));
            Class<?> raw = rawClass(target);
            Class<?> record = raw.isRecord() ? raw : null;
            if (raw.isSealed()) {
                if (segment.equals("type") && i == segments.length - 1) {
                    target = String.class;
                    continue;
                }
                record = variantOf(raw, cursor == null ? null : cursor.get("type"));
                if (record == null) {
                    problems.addRaw("override \"" + override + "\": " + sofar + ".type is not set to one of "
                            + variantIds(raw) + "; set it first or give the whole section (" + sofar
                            + "={type: ..., ...})");
                    return;
                }
            }
            RecordComponent component = record == null ? null : componentOf(record, segment);
            if (component == null) {
                String suggestion = record == null ? null : suggest(segment, keysOf(record));
                problems.addRaw("override \"" + override + "\": unknown key " + key
                        + (suggestion == null ? "" : " (did you mean " + (sofar.isEmpty() ? "" : sofar + ".")
                        + suggestion + "?)")
                        + (record == null ? " (" + sofar + " has no sub-keys)" : ""));
                return;
            }
            target = component.getGenericType();
            cursor = cursor == null ? null : cursor.get(segment);
        }
        JsonNode value = overrideValue(text, target, key, override, problems);
        if (value == null) return;
        ObjectNode parent = root;
        for (int i = 0; i < segments.length - 1; i++) {
            JsonNode child = parent.get(segments[i]);
            if (!(child instanceof ObjectNode)) child = parent.putObject(segments[i]);
            parent = (ObjectNode) child;
        }
        parent.set(segments[segments.length - 1], value);
        problems.overridden.put(key, override);
        // steps and epochs are alternatives: setting one drops the recipe's other, unless that one is overridden too
        String other = key.equals("steps") ? "epochs" : key.equals("epochs") ? "steps" : null;
        if (other != null && !value.isNull() && !problems.overridden.containsKey(other)) root.remove(other);
    }

    /** The override text as a tree node of the target's type; null (and a problem) when it does not fit. */
    private static JsonNode overrideValue(String text, Type target, String key, String override, Problems problems) {
        if (text.equals("null") || text.equals("~")) return NullNode.getInstance();
        Class<?> raw = rawClass(target);
        String expected = null;
        if (raw == String.class || raw == Path.class || raw.isEnum()) return TextNode.valueOf(unquote(text));
        if (raw == int.class || raw == Integer.class || raw == long.class || raw == Long.class) {
            if (INTEGER.matcher(text).matches()) {
                try {
                    return LongNode.valueOf(Long.parseLong(text));
                } catch (NumberFormatException e) {
                    expected = "an integer";
                }
            } else {
                expected = "an integer";
            }
        } else if (raw == double.class || raw == Double.class) {
            if (NUMBER.matcher(text).matches()) return DoubleNode.valueOf(Double.parseDouble(text));
            expected = "a number";
        } else if (raw == boolean.class || raw == Boolean.class) {
            if (text.equals("true") || text.equals("false")) return BooleanNode.valueOf(text.equals("true"));
            expected = "true or false";
        } else if (raw == List.class) {
            // split by hand rather than as YAML: globs like **.bias would be YAML aliases
            String inner = text.startsWith("[") && text.endsWith("]") ? text.substring(1, text.length() - 1).trim() : text;
            ArrayNode array = JsonNodeFactory.instance.arrayNode();
            if (inner.isEmpty()) return array;
            Type element = typeArgument(target, 0);
            String[] items = inner.split(",");
            for (int i = 0; i < items.length; i++) {
                JsonNode item = overrideValue(items[i].trim(), element, key + "[" + i + "]", override, problems);
                if (item == null) return null;
                array.add(item);
            }
            return array;
        } else {
            try {
                JsonNode tree = YAML.readTree(text);
                if (tree != null && tree.isObject()) return tree;
            } catch (JsonProcessingException e) {
                // reported below
            }
            expected = "a mapping like {key: value, ...}";
        }
        problems.addRaw(problems.source + ": " + key + ": expected " + expected + ", got \"" + text
                + "\" (from override \"" + override + "\")");
        return null;
    }

    private static String unquote(String text) {
        boolean quoted = text.length() >= 2 && (text.startsWith("\"") && text.endsWith("\"")
                || text.startsWith("'") && text.endsWith("'"));
        return quoted ? text.substring(1, text.length() - 1) : text;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Binding: tree -> records, every problem with its key path
    // ---------------------------------------------------------------------------------------------------------------

    /** Collected problems of one load; each line is prefixed with the recipe file. */
    static final class Problems {
        final String source;
        final List<String> lines = new ArrayList<>();
        /** Override key -> override text, so messages about that key say where the value came from. */
        final Map<String, String> overridden = new LinkedHashMap<>();

        Problems(String source) {
            this.source = source;
        }

        void add(String path, String message) {
            String origin = "";
            for (Map.Entry<String, String> entry : overridden.entrySet()) {
                String key = entry.getKey();
                if (path.equals(key) || path.startsWith(key + ".") || path.startsWith(key + "[")) {
                    origin = " (from override \"" + entry.getValue() + "\")";
                }
            }
            lines.add(source + ": " + path + ": " + message + origin);
        }

        void addRaw(String line) {
            lines.add(line.startsWith(source + ": ") ? line : source + ": " + line);
        }

        int count() {
            return lines.size();
        }

        void throwIfAny() {
            if (!lines.isEmpty()) throw new IllegalArgumentException(String.join("\n", lines));
        }
    }

    /** The tree as a {@code type} record; null when anything does not fit (every problem is recorded). */
    static Object bind(JsonNode root, Class<?> type, Path recipe, Problems problems) {
        return new Binder(problems, recipe).bind(root, type, "");
    }

    private static final class Binder {
        private final Problems problems;
        private final Path recipe;

        Binder(Problems problems, Path recipe) {
            this.problems = problems;
            this.recipe = recipe;
        }

        /** The node as a value of {@code type}; null when it does not fit (the problem is recorded). */
        Object bind(JsonNode node, Type type, String path) {
            Class<?> raw = rawClass(type);
            if (raw == String.class) {
                return node.isTextual() ? node.textValue() : fail(path, "expected a string, got " + show(node));
            }
            if (raw == Path.class) {
                if (!node.isTextual()) return fail(path, "expected a path, got " + show(node));
                try {
                    return Path.of(node.textValue());
                } catch (InvalidPathException e) {
                    return fail(path, "not a valid path: " + e.getMessage());
                }
            }
            if (raw == int.class || raw == Integer.class) {
                return node.isIntegralNumber() && node.canConvertToInt() ? node.intValue()
                        : fail(path, "expected an integer, got " + show(node));
            }
            if (raw == long.class || raw == Long.class) {
                return node.isIntegralNumber() && node.canConvertToLong() ? node.longValue()
                        : fail(path, "expected an integer, got " + show(node));
            }
            if (raw == double.class || raw == Double.class) {
                if (!node.isNumber()) return fail(path, "expected a number, got " + show(node));
                if (!Double.isFinite(node.doubleValue())) return fail(path, "expected a finite number, got " + show(node));
                return node.doubleValue();
            }
            if (raw == boolean.class || raw == Boolean.class) {
                return node.isBoolean() ? node.booleanValue() : fail(path, "expected true or false, got " + show(node));
            }
            if (raw.isEnum()) return bindEnum(node, raw, path);
            if (raw == List.class) return bindList(node, typeArgument(type, 0), path);
            if (raw == Map.class) return bindMap(node, path);
            if (raw.isRecord()) return bindRecord(node, raw, path, List.of());
            if (raw.isSealed()) return bindVariant(node, raw, path);
            throw new IllegalStateException("no binding for " + type);
        }

        private Object bindEnum(JsonNode node, Class<?> type, String path) {
            if (node.isTextual()) {
                for (Object constant : type.getEnumConstants()) {
                    if (idOf((Enum<?>) constant).equals(node.textValue())) return constant;
                }
                return fail(path, "unknown value " + show(node) + "; allowed: " + enumIds(type));
            }
            return fail(path, "expected one of " + enumIds(type) + ", got " + show(node));
        }

        private Object bindList(JsonNode node, Type element, String path) {
            if (node.isValueNode()) {    // one value stands for a one-element list
                Object item = bind(node, element, path);
                return item == null ? null : List.of(item);
            }
            if (!node.isArray()) return fail(path, "expected a list, got " + show(node));
            int before = problems.count();
            List<Object> items = new ArrayList<>();
            for (int i = 0; i < node.size(); i++) {
                JsonNode item = node.get(i);
                String itemPath = path + "[" + i + "]";
                if (item.isNull()) fail(itemPath, "expected a value, got null");
                else items.add(bind(item, element, itemPath));
            }
            return problems.count() > before ? null : List.copyOf(items);
        }

        private Object bindMap(JsonNode node, String path) {
            if (!node.isObject()) return fail(path, "expected a mapping, got " + show(node));
            Map<String, String> map = new LinkedHashMap<>();
            int before = problems.count();
            node.fields().forEachRemaining(entry -> {
                if (entry.getValue().isTextual()) map.put(entry.getKey(), entry.getValue().textValue());
                else fail(path + "[\"" + entry.getKey() + "\"]", "expected a string, got " + show(entry.getValue()));
            });
            return problems.count() > before ? null : Collections.unmodifiableMap(map);
        }

        private Object bindVariant(JsonNode node, Class<?> type, String path) {
            String typePath = join(path, "type");
            if (!node.isObject()) return fail(path, "expected a mapping with a type key, got " + show(node));
            JsonNode id = node.get("type");
            if (id == null || id.isNull()) return fail(typePath, "missing required key (one of " + variantIds(type) + ")");
            Class<?> variant = variantOf(type, id);
            if (variant == null) return fail(typePath, "unknown value " + show(id) + "; allowed: " + variantIds(type));
            ObjectNode rest = node.deepCopy();
            rest.remove("type");
            return bindRecord(rest, variant, path, List.of("type"));
        }

        private Object bindRecord(JsonNode node, Class<?> type, String path, List<String> extraKeys) {
            if (!node.isObject()) return fail(path, "expected a mapping, got " + show(node));
            int before = problems.count();
            List<String> keys = new ArrayList<>(extraKeys);
            keys.addAll(keysOf(type));
            Variant variant = type.getAnnotation(Variant.class);
            node.fieldNames().forEachRemaining(name -> {
                if (keys.contains(name)) return;
                String suggestion = suggest(name, keys);
                fail(join(path, name), "unknown key" + (variant == null ? "" : " for type " + variant.value())
                        + (suggestion == null ? "" : " (did you mean " + suggestion + "?)")
                        + "; allowed keys: " + String.join(", ", keys));
            });
            RecordComponent[] components = type.getRecordComponents();
            Object[] args = new Object[components.length];
            Class<?>[] types = new Class<?>[components.length];
            for (int i = 0; i < components.length; i++) {
                RecordComponent component = components[i];
                types[i] = component.getType();
                if (component.isAnnotationPresent(SetByLoad.class)) {
                    args[i] = recipe;
                    continue;
                }
                Doc doc = component.getAnnotation(Doc.class);
                String key = join(path, component.getName());
                JsonNode value = node.get(component.getName());
                if (value == null || value.isNull()) {
                    if (doc.defaultValue().equals(Doc.REQUIRED)) {
                        fail(key, value == null ? "missing required key" : "a value is required, got null");
                        continue;
                    }
                    value = defaultNode(doc);
                    if (value.isNull()) continue;
                }
                args[i] = bind(value, component.getGenericType(), key);
            }
            if (problems.count() > before) return null;
            try {
                return type.getDeclaredConstructor(types).newInstance(args);
            } catch (InvocationTargetException e) {
                return fail(path, e.getCause().getMessage());
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }

        private Object fail(String path, String message) {
            problems.add(path.isEmpty() ? "(top)" : path, message);
            return null;
        }
    }

    private static JsonNode defaultNode(Doc doc) {
        try {
            JsonNode node = YAML.readTree(doc.defaultValue());
            return node == null ? NullNode.getInstance() : node;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("bad default " + doc.defaultValue(), e);
        }
    }

    private static String join(String path, String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    /** A value as the user wrote it: strings quoted, long containers cut. */
    static String show(JsonNode node) {
        String text = node.toString();
        return text.length() > 60 ? text.substring(0, 57) + "..." : text;
    }

    private static List<String> keysOf(Class<?> record) {
        return Arrays.stream(record.getRecordComponents()).filter(c -> !c.isAnnotationPresent(SetByLoad.class))
                .map(RecordComponent::getName).toList();
    }

    private static RecordComponent componentOf(Class<?> record, String name) {
        for (RecordComponent c : record.getRecordComponents()) {
            if (c.getName().equals(name) && !c.isAnnotationPresent(SetByLoad.class)) return c;
        }
        return null;
    }

    private static Class<?> variantOf(Class<?> sealed, JsonNode id) {
        if (id == null || !id.isTextual()) return null;
        for (Class<?> variant : sealed.getPermittedSubclasses()) {
            if (variant.getAnnotation(Variant.class).value().equals(id.textValue())) return variant;
        }
        return null;
    }

    private static String variantIds(Class<?> sealed) {
        return Arrays.stream(sealed.getPermittedSubclasses()).map(v -> v.getAnnotation(Variant.class).value())
                .collect(Collectors.joining(", "));
    }

    private static String enumIds(Class<?> type) {
        return Arrays.stream(type.getEnumConstants()).map(c -> idOf((Enum<?>) c)).collect(Collectors.joining(", "));
    }

    /** The known key a typo most likely meant: same letters in another case, else within edit distance 2. */
    private static String suggest(String key, List<String> known) {
        for (String candidate : known) if (candidate.equalsIgnoreCase(key)) return candidate;
        String best = null;
        int bestDistance = Math.min(3, Math.max(1, key.length() / 3) + 1);
        for (String candidate : known) {
            int distance = ParameterGlob.editDistance(key.toLowerCase(Locale.ROOT), candidate.toLowerCase(Locale.ROOT));
            if (distance < bestDistance) {
                best = candidate;
                bestDistance = distance;
            }
        }
        return best;
    }

    private static Class<?> rawClass(Type type) {
        if (type instanceof Class<?> c) return c;
        if (type instanceof ParameterizedType p) return (Class<?>) p.getRawType();
        throw new IllegalStateException("unsupported type " + type);
    }

    private static Type typeArgument(Type type, int index) {
        return ((ParameterizedType) type).getActualTypeArguments()[index];
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Help rows and record -> tree
    // ---------------------------------------------------------------------------------------------------------------

    /** One {key, "type, default", meaning} row per key of {@code record}, sections followed by their keys. */
    static List<String[]> describeRows(Class<?> record) {
        List<String[]> rows = new ArrayList<>();
        describe(record, "", "", rows);
        return rows;
    }

    private static void describe(Class<?> record, String prefix, String note, List<String[]> rows) {
        for (RecordComponent component : record.getRecordComponents()) {
            if (component.isAnnotationPresent(SetByLoad.class)) continue;
            Doc doc = component.getAnnotation(Doc.class);
            String key = prefix + component.getName();
            Class<?> raw = component.getType();
            String dflt = doc.defaultValue().equals(Doc.REQUIRED) ? "required" : "default " + doc.defaultValue();
            if (raw.isRecord() || raw.isSealed()) dflt = doc.defaultValue().equals(Doc.REQUIRED) ? "required" : "optional";
            rows.add(new String[]{key, typeName(component.getGenericType()) + ", " + dflt, note + doc.value()});
            if (raw.isRecord()) describe(raw, key + ".", "", rows);
            if (raw.isSealed()) {
                rows.add(new String[]{key + ".type", "one of " + variantIds(raw) + ", required",
                        "which " + component.getName() + " variant; the keys below apply to one variant each"});
                for (Class<?> variant : raw.getPermittedSubclasses()) {
                    describe(variant, key + ".", "(" + variant.getAnnotation(Variant.class).value() + ") ", rows);
                }
            }
        }
    }

    private static String typeName(Type type) {
        Class<?> raw = rawClass(type);
        if (raw == String.class) return "string";
        if (raw == Path.class) return "path";
        if (raw == int.class || raw == Integer.class || raw == long.class || raw == Long.class) return "integer";
        if (raw == double.class || raw == Double.class) return "number";
        if (raw == boolean.class || raw == Boolean.class) return "boolean";
        if (raw.isEnum()) return "one of " + enumIds(raw);
        if (raw == List.class) {
            Type element = typeArgument(type, 0);
            return rawClass(element).isEnum() ? "list of any of " + enumIds(rawClass(element))
                    : "list of " + typeName(element);
        }
        if (raw == Map.class) return "map of string to string";
        return "section";
    }

    /** A record (or value) as the tree a recipe file would parse to. */
    static JsonNode toTree(Object value) {
        JsonNodeFactory nodes = JsonNodeFactory.instance;
        if (value == null) return nodes.nullNode();
        if (value instanceof String s) return nodes.textNode(s);
        if (value instanceof Path p) return nodes.textNode(p.toString());
        if (value instanceof Integer i) return nodes.numberNode(i);
        if (value instanceof Long l) return nodes.numberNode(l);
        if (value instanceof Double d) return nodes.numberNode(d);
        if (value instanceof Boolean b) return nodes.booleanNode(b);
        if (value instanceof Enum<?> e) return nodes.textNode(idOf(e));
        if (value instanceof List<?> list) {
            ArrayNode array = nodes.arrayNode();
            list.forEach(item -> array.add(toTree(item)));
            return array;
        }
        if (value instanceof Map<?, ?> map) {
            ObjectNode object = nodes.objectNode();
            map.forEach((k, v) -> object.set(k.toString(), toTree(v)));
            return object;
        }
        ObjectNode object = nodes.objectNode();
        Variant variant = value.getClass().getAnnotation(Variant.class);
        if (variant != null) object.put("type", variant.value());
        for (RecordComponent component : value.getClass().getRecordComponents()) {
            if (component.isAnnotationPresent(SetByLoad.class)) continue;
            try {
                object.set(component.getName(), toTree(component.getAccessor().invoke(value)));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return object;
    }
}
