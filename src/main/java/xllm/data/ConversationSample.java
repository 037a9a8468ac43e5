package xllm.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One LLaVA-style sample of a manifest (DESIGN.md §4), single- or multi-turn:
 * {@code {"id", "image"?, "video"?, "audio"?, "conversations": [{"from": "human", "value": "<image>\n..."},
 * {"from": "gpt", "value": "..."}, {"from": "human", ...}, {"from": "gpt", ...}]}}. A manifest is JSONL (one sample a
 * line) or, as LLaVA ships {@code llava_instruct_150k.json}, one JSON array of the same objects
 * ({@link JsonLines#readObjects}). Format and examples: {@code docs/instructions.md}.
 *
 * <p>Rules, each broken one an error naming file:line (JSONL) or file[index] (array) and what was found:
 * <ul>
 *   <li>{@code conversations} alternates human, gpt, human, gpt, ...: at least one pair, an even length, no
 *       other role.</li>
 *   <li>A medium ({@code image}, {@code video}, {@code audio}) belongs to the human turn whose text holds its
 *       placeholder ({@code <image>}, {@code <video>}, {@code <audio>}); with the field present and no placeholder
 *       anywhere, it belongs to the first turn (LLaVA's convention). A placeholder without its field, or one
 *       placeholder in two turns, is an error.</li>
 *   <li>A turn's question is its human text without placeholders, stripped ({@link #questionText}); a blank one
 *       is allowed only when the turn has the audio (the speech is the question).</li>
 *   <li>Every answer is non-empty.</li>
 *   <li>Media paths are relative to the manifest and stay inside its directory tree ({@link MediaPaths}).</li>
 * </ul>
 * Other fields (task, language, attributes) are ignored here; readers that need them use {@link #fromJson}.
 */
public record ConversationSample(String id, Path image, Path video, Path audio, List<Turn> turns) {

    /** The placeholder of each medium, in the order of the record's fields. */
    private static final String[] MEDIA = {"image", "video", "audio"};

    /**
     * One exchange: which of the sample's media belong to this turn, the typed question (placeholders removed, may
     * be blank when the only input is speech) and the answer.
     */
    public record Turn(boolean image, boolean video, boolean audio, String question, String answer) {}

    public ConversationSample {
        if (turns.isEmpty()) throw new IllegalArgumentException(id + ": a conversation needs at least one turn");
        turns = List.copyOf(turns);
    }

    /** The first turn's question: what single-turn readers (captioning, ASR-style tasks) use. */
    public String question() {
        return turns.get(0).question();
    }

    /** The first turn's answer. */
    public String answer() {
        return turns.get(0).answer();
    }

    /** Reads a JSONL manifest or a JSON array of samples; an empty one is an error. */
    public static List<ConversationSample> readManifest(Path manifest) throws IOException {
        List<ConversationSample> samples = new ArrayList<>();
        JsonLines.readObjects(manifest, line -> samples.add(fromJson(line.object(), manifest, line.where())));
        if (samples.isEmpty()) throw new IOException(manifest + ": no samples");
        return samples;
    }

    /** The human turn without its media placeholders ({@code <image>}, {@code <video>}, {@code <audio>}). */
    public static String questionText(String humanTurn) {
        return humanTurn.replace("<image>", "").replace("<video>", "").replace("<audio>", "").strip();
    }

    /**
     * One manifest row, checked as {@link #readManifest} checks each one (the rules of the class comment). For readers
     * that keep the row's other fields (task, language, keywords); {@code where} is "file:line" or "file[index]".
     */
    public static ConversationSample fromJson(JsonNode node, Path manifest, String where) throws IOException {
        JsonNode conversations = node.path("conversations");
        if (!node.path("id").isTextual() || !conversations.isArray()) {
            throw new IOException(where + ": expected {\"id\", \"conversations\": [human, gpt, ...]}");
        }
        requireAlternatingTurns(conversations, where);
        int pairs = conversations.size() / 2;
        String[] humans = new String[pairs];
        String[] answers = new String[pairs];
        for (int t = 0; t < pairs; t++) {
            humans[t] = text(conversations.get(2 * t), 2 * t, where);
            answers[t] = text(conversations.get(2 * t + 1), 2 * t + 1, where);
            if (answers[t].isBlank()) throw new IOException(where + ": empty answer in turn " + (2 * t + 1));
        }
        // step 1: which turn each medium belongs to (-1: the sample has no such medium)
        int[] owner = new int[MEDIA.length];
        for (int m = 0; m < MEDIA.length; m++) owner[m] = ownerTurn(node, MEDIA[m], humans, where);
        // step 2: the turns, each with its media and question
        List<Turn> turns = new ArrayList<>(pairs);
        for (int t = 0; t < pairs; t++) {
            String question = questionText(humans[t]);
            boolean audio = owner[2] == t;
            if (question.isEmpty() && !audio) {
                throw new IOException(where + ": turn " + 2 * t + " asks nothing: no text and no <audio>");
            }
            turns.add(new Turn(owner[0] == t, owner[1] == t, audio, question, answers[t]));
        }
        return new ConversationSample(node.get("id").asText(), media(node, "image", manifest, where),
                media(node, "video", manifest, where), media(node, "audio", manifest, where), turns);
    }

    /**
     * Refuses anything but human, gpt, human, gpt, ... (at least one pair): the order the prompt and the loss assume.
     * The message lists the roles found, e.g. {@code [gpt, human]}.
     */
    public static void requireAlternatingTurns(JsonNode conversations, String where) throws IOException {
        boolean ok = conversations.isArray() && conversations.size() >= 2 && conversations.size() % 2 == 0;
        for (int i = 0; ok && i < conversations.size(); i++) {
            ok = conversations.get(i).path("from").asText().equals(i % 2 == 0 ? "human" : "gpt");
        }
        if (!ok) {
            throw new IOException(where + ": conversations must alternate human, gpt (at least one pair), got "
                    + roles(conversations));
        }
    }

    /**
     * Refuses anything but exactly two turns, human then gpt: for readers that score one question per sample
     * (single-turn evaluation sets, spoken scene questions).
     */
    public static void requireHumanThenGpt(JsonNode conversations, String where) throws IOException {
        if (!conversations.isArray() || conversations.size() != 2) {
            throw new IOException(where + ": conversations must be one human turn then one gpt turn, got "
                    + roles(conversations));
        }
        try {
            requireAlternatingTurns(conversations, where);
        } catch (IOException e) {
            throw new IOException(where + ": conversations must be one human turn then one gpt turn, got "
                    + roles(conversations));
        }
    }

    private static String roles(JsonNode conversations) {
        if (!conversations.isArray()) return conversations.isMissingNode() ? "none" : conversations.getNodeType().toString();
        List<String> roles = new ArrayList<>();
        for (JsonNode turn : conversations) roles.add(turn.path("from").asText("?"));
        return roles.toString();
    }

    private static String text(JsonNode turn, int index, String where) throws IOException {
        JsonNode value = turn.path("value");
        if (!value.isTextual()) throw new IOException(where + ": turn " + index + " has no string \"value\"");
        return value.asText();
    }

    /**
     * The pair index of the human turn that {@code medium} belongs to: the one holding its placeholder, else the first
     * when the sample has the field; -1 when it has neither field nor placeholder.
     */
    private static int ownerTurn(JsonNode node, String medium, String[] humans, String where) throws IOException {
        String placeholder = "<" + medium + ">";
        int owner = -1;
        for (int t = 0; t < humans.length; t++) {
            if (!humans[t].contains(placeholder)) continue;
            if (owner >= 0) {
                throw new IOException(where + ": " + placeholder + " appears in turns " + 2 * owner + " and " + 2 * t
                        + "; a sample has one " + medium);
            }
            owner = t;
        }
        if (!node.has(medium)) {
            if (owner >= 0) throw new IOException(where + ": turn " + 2 * owner + " has " + placeholder
                    + " but the sample has no \"" + medium + "\" field");
            return -1;
        }
        return owner >= 0 ? owner : 0;
    }

    private static Path media(JsonNode node, String field, Path manifest, String where) throws IOException {
        if (!node.has(field)) return null;
        if (!node.get(field).isTextual()) throw new IOException(where + ": \"" + field + "\" must be a path string");
        return MediaPaths.resolve(manifest, node.get(field).asText(), field, where);
    }
}
