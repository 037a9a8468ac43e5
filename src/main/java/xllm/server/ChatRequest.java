package xllm.server;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * One {@code POST /v1/chat/completions} body, read and checked field by field: every message and content part is
 * either understood or refused with the field's name; nothing is dropped.
 *
 * @param model    the model id the client asked for
 * @param messages in order
 * @param stream   server-sent events instead of one JSON answer
 * @param usageInStream  {@code stream_options.include_usage}
 * @param maxTokens the reply's token budget
 * @param temperature 0 = greedy
 * @param topP     nucleus mass
 * @param seed     the sampler's seed
 * @param stop     stop strings
 */
record ChatRequest(String model, List<Message> messages, boolean stream, boolean usageInStream, int maxTokens,
                   float temperature, float topP, long seed, List<String> stop) {

    /** Used when a request names no {@code max_tokens}; the context still bounds it. */
    static final int DEFAULT_MAX_TOKENS = 512;

    enum Kind { TEXT, IMAGE, VIDEO, AUDIO }

    /**
     * One content part: text, or a medium given by URL (image, video) or inline base64 (audio).
     *
     * @param where the request field, e.g. {@code messages[2].content[1]}
     */
    record Part(Kind kind, String text, String url, String audioBase64, String where) {}

    record Message(String role, List<Part> parts, String where) {
        String text() {
            StringBuilder out = new StringBuilder();
            for (Part p : parts) {
                if (p.kind() != Kind.TEXT) continue;
                if (out.length() > 0) out.append('\n');
                out.append(p.text());
            }
            return out.toString();
        }
    }

    static ChatRequest parse(JsonNode body, ServerOptions.MediaLimits limits) throws ApiException {
        if (body == null || !body.isObject()) throw ApiException.badRequest(null, "the request body must be a JSON object");
        JsonNode messages = body.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiException.badRequest("messages", "'messages' must be a non-empty array");
        }
        if (messages.size() > limits.maxMessages()) {
            throw ApiException.badRequest("messages", "too many messages: " + messages.size() + " (the limit is "
                    + limits.maxMessages() + ")");
        }
        List<Message> parsed = new ArrayList<>();
        int parts = 0, media = 0;
        for (int i = 0; i < messages.size(); i++) {
            Message m = message(messages.get(i), "messages[" + i + "]");
            parts += m.parts().size();
            if (parts > limits.maxParts()) {
                throw ApiException.badRequest("messages", "too many content parts (more than " + limits.maxParts() + ")");
            }
            media += (int) m.parts().stream().filter(p -> p.kind() != Kind.TEXT).count();
            if (media > limits.maxMedia()) {
                throw ApiException.badRequest("messages", "too many media in one request (more than " + limits.maxMedia()
                        + ", history included)");
            }
            parsed.add(m);
        }
        String model = text(body, "model", null);
        boolean stream = bool(body, "stream");
        JsonNode streamOptions = body.get("stream_options");
        boolean usage = streamOptions != null && !streamOptions.isNull() && bool(streamOptions, "include_usage");
        JsonNode n = body.hasNonNull("max_completion_tokens") ? body.get("max_completion_tokens") : body.get("max_tokens");
        int maxTokens = DEFAULT_MAX_TOKENS;
        if (n != null && !n.isNull()) {
            if (!n.canConvertToInt() || !n.isIntegralNumber() || n.intValue() < 1) {
                throw ApiException.badRequest("max_tokens", "'max_tokens' must be a positive integer");
            }
            maxTokens = n.intValue();
        }
        float temperature = number(body, "temperature", 1.0f, 0f, 2f);
        float topP = number(body, "top_p", 1.0f, 0f, 1f);
        if (topP == 0f) throw ApiException.badRequest("top_p", "'top_p' must be greater than 0");
        long seed = 0;
        JsonNode s = body.get("seed");
        if (s != null && !s.isNull()) {
            if (!s.isIntegralNumber() || !s.canConvertToLong()) throw ApiException.badRequest("seed", "'seed' must be an integer");
            seed = s.longValue();
        }
        List<String> stop = new ArrayList<>();
        JsonNode st = body.get("stop");
        if (st != null && !st.isNull()) {
            if (st.isTextual()) stop.add(st.asText());
            else if (st.isArray() && st.size() <= 4) {
                for (JsonNode x : st) {
                    if (!x.isTextual() || x.asText().isEmpty()) throw ApiException.badRequest("stop", "'stop' entries must be non-empty strings");
                    stop.add(x.asText());
                }
            } else throw ApiException.badRequest("stop", "'stop' must be a string or an array of at most 4 strings");
        }
        JsonNode count = body.get("n");
        if (count != null && !count.isNull() && !(count.isIntegralNumber() && count.intValue() == 1)) {
            throw ApiException.badRequest("n", "only n = 1 is supported");
        }
        return new ChatRequest(model, parsed, stream, usage, maxTokens, temperature, topP, seed, stop);
    }

    private static Message message(JsonNode node, String where) throws ApiException {
        if (node == null || !node.isObject()) throw ApiException.badRequest(where, where + " must be an object");
        String role = text(node, "role", where + ".role");
        if (!List.of("system", "developer", "user", "assistant").contains(role)) {
            throw ApiException.badRequest(where + ".role", where + ".role: unsupported role '" + role
                    + "' (system, user and assistant are read)");
        }
        if ("developer".equals(role)) role = "system";
        JsonNode content = node.get("content");
        List<Part> parts = new ArrayList<>();
        if (content == null || content.isNull()) {
            throw ApiException.badRequest(where + ".content", where + ".content is missing");
        } else if (content.isTextual()) {
            parts.add(new Part(Kind.TEXT, content.asText(), null, null, where + ".content"));
        } else if (content.isArray()) {
            for (int i = 0; i < content.size(); i++) parts.add(part(content.get(i), where + ".content[" + i + "]"));
        } else {
            throw ApiException.badRequest(where + ".content", where + ".content must be a string or an array of parts");
        }
        if (!role.equals("user") && parts.stream().anyMatch(p -> p.kind() != Kind.TEXT)) {
            throw ApiException.badRequest(where + ".content", where + ": only user messages may carry media");
        }
        return new Message(role, parts, where);
    }

    private static Part part(JsonNode node, String where) throws ApiException {
        if (node == null || !node.isObject()) throw ApiException.badRequest(where, where + " must be an object");
        String type = text(node, "type", where + ".type");
        switch (type) {
            case "text":
                return new Part(Kind.TEXT, text(node, "text", where + ".text"), null, null, where);
            case "image_url":
                return new Part(Kind.IMAGE, null, url(node, "image_url", where), null, where);
            case "video_url":
                return new Part(Kind.VIDEO, null, url(node, "video_url", where), null, where);
            case "input_audio": {
                JsonNode audio = node.get("input_audio");
                if (audio == null || !audio.isObject()) {
                    throw ApiException.badRequest(where, where + ": 'input_audio' must be an object {data, format}");
                }
                String format = text(audio, "format", where + ".input_audio.format");
                if (!format.equalsIgnoreCase("wav")) {
                    throw ApiException.badRequest(where, where + ": audio format '" + format + "' is not read; send WAV "
                            + "(format \"wav\")");
                }
                return new Part(Kind.AUDIO, null, null, text(audio, "data", where + ".input_audio.data"), where);
            }
            default:
                throw ApiException.badRequest(where + ".type", where + ": unsupported content part type '" + type
                        + "' (text, image_url, input_audio and video_url are read)");
        }
    }

    /** {@code {"image_url": {"url": …}}} or the older {@code {"image_url": "…"}}. */
    private static String url(JsonNode node, String field, String where) throws ApiException {
        JsonNode v = node.get(field);
        if (v != null && v.isTextual()) return v.asText();
        if (v != null && v.isObject()) return text(v, "url", where + "." + field + ".url");
        throw ApiException.badRequest(where, where + ": '" + field + "' must be an object {url}");
    }

    private static String text(JsonNode node, String field, String where) throws ApiException {
        JsonNode v = node.get(field);
        if (v == null || v.isNull()) {
            if (where == null) return null;
            throw ApiException.badRequest(where, where + " is missing");
        }
        if (!v.isTextual()) throw ApiException.badRequest(where == null ? field : where, (where == null ? field : where)
                + " must be a string");
        return v.asText();
    }

    private static boolean bool(JsonNode node, String field) throws ApiException {
        JsonNode v = node.get(field);
        if (v == null || v.isNull()) return false;
        if (!v.isBoolean()) throw ApiException.badRequest(field, "'" + field + "' must be true or false");
        return v.booleanValue();
    }

    private static float number(JsonNode node, String field, float fallback, float min, float max) throws ApiException {
        JsonNode v = node.get(field);
        if (v == null || v.isNull()) return fallback;
        if (!v.isNumber() || v.doubleValue() < min || v.doubleValue() > max) {
            throw ApiException.badRequest(field, "'" + field + "' must be a number in [" + min + ", " + max + "]");
        }
        return v.floatValue();
    }
}
