package xllm.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.data.SyntheticScenes.Scene;
import xllm.data.SyntheticScenes.SceneObject;
import xllm.data.SyntheticSpeech.Utterance;
import xllm.data.SyntheticVideos.Clip;
import xllm.speech.WavWriter;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Predicate;

/**
 * The stage-3 joint instruction set of X-LLM (paper §3.3, "joint training" on a small multimodal instruction set),
 * drawn from our synthetic generators: scenes of {@link SyntheticScenes}, clips of {@link SyntheticVideos} and
 * espeak-ng speech rendered as {@link SyntheticSpeech} renders it. Seven tasks, one conversation each, assigned
 * round-robin (conversation i has task i mod 7): image captions and scene questions, video questions, ASR with
 * the paper's instruction and rephrasings, spoken questions about an image (the speech is the whole question),
 * multimodal ASR (a description of the image spoken over noise at 0-6 dB SNR, which the image helps to recognise),
 * and 2-3-turn conversations about one image mixing typed and spoken questions. Lines follow {@link
 * ConversationSample}'s format, each with a {@code "task"}; {@code docs/instructions.md} shows one of each.
 *
 * <p>The held-out split is disjoint from train in four ways, checked by {@code InstructionSetTest}: images (eval
 * scenes exclude every train layout), clips (likewise), spoken texts (a text is held out when its hash falls in one
 * bucket of {@value #HELD_OUT_BUCKETS}; train draws never use held-out texts, eval draws only them) and voices (the
 * espeak-ng variants {@link #EVAL_VARIANTS} speak eval only). Everything is a function of the seed: plans are drawn
 * sequentially, then images, clips and WAVs are rendered by {@code workers} threads (espeak-ng runs one process per
 * utterance), then the manifests are written to temporary files and renamed.
 */
public final class InstructionSet {

    /** The tasks, with the {@code "task"} value of their lines. */
    public enum Task {
        IMAGE_CAPTION("image-caption"), IMAGE_QA("image-qa"), VIDEO_QA("video-qa"), ASR("asr"),
        SPOKEN_IMAGE_QA("spoken-image-qa"), MM_ASR("mm-asr"), MULTI_TURN("multi-turn");

        public final String label;

        Task(String label) {
            this.label = label;
        }
    }

    /** The ASR instruction of the paper, then rephrasings; each ASR sample draws one. */
    public static final List<String> ASR_INSTRUCTIONS = List.of("Please faithfully recognize the speech.",
            "Transcribe the speech.", "Write down exactly what the speaker says.",
            "What is said in this recording? Give the exact words.", "Please convert the speech into text.",
            "Repeat the spoken sentence word for word.");
    /** The multimodal-ASR instruction: the image is context for recognising the speech. */
    public static final String MM_ASR_INSTRUCTION = "Please faithfully recognize the speech based on the image.";
    /** espeak-ng voice variants reserved for eval: eval voices are speakers train never heard. */
    public static final Set<String> EVAL_VARIANTS = Set.of("m6", "m7", "f4", "f5");
    /** One spoken text in this many is held out for eval. */
    static final int HELD_OUT_BUCKETS = 5;
    /** Multimodal-ASR speech is mixed with noise at an SNR uniform in this range: hard to hear without the image. */
    static final double MM_ASR_MIN_SNR_DB = 0;
    static final double MM_ASR_MAX_SNR_DB = 6;
    /** Openings put before a direct spoken question, so one question has several spoken texts. */
    private static final String[] QUESTION_PREFIXES = {"", "in this picture ", "looking at the image ",
            "quick question ", "please answer this ", "one more thing ", "tell me this ", "okay so "};
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What {@link #build} wrote: conversations per split and task, media files, wall time. */
    public record Summary(Path outDir, Map<String, Map<String, Integer>> tasks, int images, int clips,
                          int utterances, double seconds) {}

    /** One planned conversation: its manifest line, and the media to render for it (null when absent). */
    private record Plan(Task task, ObjectNode line, Scene scene, Clip clip, Utterance utterance) {}

    /** A spoken text and the typed answer it expects. */
    record Spoken(String text, String answer) {}

    private InstructionSet() {}

    /**
     * Writes {@code outDir/{train,eval}.jsonl}, {@code eval-mmasr.jsonl}, {@code eval-spoken-image.jsonl},
     * {@code summary.json} and the media under {@code images/}, {@code videos/}, {@code audio/}.
     *
     * @param train    training conversations, at least one per task (7)
     * @param eval     held-out conversations, at least 7
     * @param workers  threads rendering media (each speech one runs an espeak-ng process)
     * @param progress a progress bar on stderr
     */
    public static Summary build(Path outDir, int train, int eval, long seed, int workers, boolean progress)
            throws IOException {
        int tasks = Task.values().length;
        if (train < tasks || eval < tasks) {
            throw new IllegalArgumentException("need at least " + tasks + " conversations per split (one per task), got "
                    + train + " train and " + eval + " eval");
        }
        long start = System.nanoTime();
        // step 1: plans, sequentially (deterministic exclusion); eval excludes what train drew
        Set<String> sceneLayouts = new HashSet<>();
        Set<String> clipLayouts = new HashSet<>();
        List<Plan> trainPlans = plan("train", train, seed, sceneLayouts, clipLayouts);
        List<Plan> evalPlans = plan("eval", eval, seed, sceneLayouts, clipLayouts);
        // step 2: render every image, clip and utterance in parallel
        List<Plan> all = new ArrayList<>(trainPlans);
        all.addAll(evalPlans);
        int[] counts = render(outDir, all, workers, progress);
        // step 3: manifests, atomically
        write(outDir.resolve("train.jsonl"), trainPlans.stream().map(Plan::line).toList());
        write(outDir.resolve("eval.jsonl"), evalPlans.stream().map(Plan::line).toList());
        write(outDir.resolve("eval-mmasr.jsonl"), evalPlans.stream().filter(p -> p.task() == Task.MM_ASR)
                .map(InstructionSet::asrLine).toList());
        write(outDir.resolve("eval-spoken-image.jsonl"), evalPlans.stream()
                .filter(p -> p.task() == Task.SPOKEN_IMAGE_QA).map(Plan::line).toList());
        Map<String, Map<String, Integer>> perTask = new LinkedHashMap<>();
        perTask.put("train", taskCounts(trainPlans));
        perTask.put("eval", taskCounts(evalPlans));
        Summary summary = new Summary(outDir, perTask, counts[0], counts[1], counts[2], (System.nanoTime() - start) / 1e9);
        writeSummary(outDir, summary, seed, evalPlans);
        return summary;
    }

    /** Draws {@code count} conversations of {@code split}; adds the layouts it used to the two sets. */
    private static List<Plan> plan(String split, int count, long seed, Set<String> sceneLayouts,
                                   Set<String> clipLayouts) {
        boolean heldOut = split.equals("eval");
        Predicate<String> allowed = text -> isHeldOut(text) == heldOut;
        Set<String> excludedScenes = Set.copyOf(sceneLayouts);
        Set<String> excludedClips = Set.copyOf(clipLayouts);
        long splitSeed = mix(seed ^ mix(("instructions/" + split).hashCode()));
        List<Plan> plans = new ArrayList<>(count);
        for (int index = 0; index < count; index++) {
            Task task = Task.values()[index % Task.values().length];
            String id = String.format(Locale.ROOT, "instr-%s-%06d", split, index);
            SplittableRandom random = new SplittableRandom(mix(splitSeed + index));
            ObjectNode line = JSON.createObjectNode().put("id", id).put("task", task.label);
            Plan plan = switch (task) {
                case VIDEO_QA -> videoQuestion(line, id, random, excludedClips, clipLayouts);
                case ASR -> {
                    String text = draw(random, SpeechSentences::english, allowed);
                    String instruction = ASR_INSTRUCTIONS.get(random.nextInt(ASR_INSTRUCTIONS.size()));
                    Utterance u = utterance(id, text, random, heldOut, false);
                    conversation(line, "<audio>\n" + instruction, text);
                    yield new Plan(task, audio(line, u).put("text", text), null, null, u);
                }
                default -> imagePlan(task, line, id, random, allowed, heldOut, excludedScenes, sceneLayouts);
            };
            plans.add(plan);
        }
        return plans;
    }

    /** The tasks about one scene: captions, typed and spoken questions, multimodal ASR, multi-turn. */
    private static Plan imagePlan(Task task, ObjectNode line, String id, SplittableRandom random,
                                  Predicate<String> allowed, boolean heldOut, Set<String> excluded, Set<String> used) {
        for (int attempt = 0; ; attempt++) {
            if (attempt == 10_000) throw new IllegalStateException(id + ": no scene with an allowed spoken text");
            Scene scene = SyntheticScenes.drawScene(id, random);
            if (excluded.contains(scene.layout()) || used.contains(scene.layout())) continue;
            List<SyntheticScenes.Sample> typed = SyntheticScenes.samples(scene, new SplittableRandom(random.nextLong()));
            SyntheticScenes.Sample caption = pick(random, typed, s -> s.kind().equals("caption") || s.kind().equals("describe"));
            SyntheticScenes.Sample question = pick(random, typed, s -> !s.kind().equals("caption") && !s.kind().equals("describe"));
            line.put("image", "images/" + id + ".png");
            ArrayNode conversations = line.putArray("conversations");
            Utterance utterance = null;
            switch (task) {
                case IMAGE_CAPTION -> {
                    turn(conversations, "<image>\n" + caption.question(), caption.answer());
                    line.put("language", caption.chinese() ? "zh" : "en");
                }
                case IMAGE_QA -> {
                    turn(conversations, "<image>\n" + question.question(), question.answer());
                    line.put("language", question.chinese() ? "zh" : "en");
                }
                case SPOKEN_IMAGE_QA -> {
                    Spoken spoken = pick(random, spokenQuestions(scene), s -> allowed.test(s.text()));
                    if (spoken == null) continue; // no held-out (or no train) wording for this scene: draw another
                    utterance = utterance(id, spoken.text(), random, heldOut, false);
                    turn(conversations, "<image>\n<audio>", spoken.answer());
                    line.put("spoken", spoken.text());
                }
                case MM_ASR -> {
                    Spoken spoken = pick(random, descriptions(scene), s -> allowed.test(s.text()));
                    if (spoken == null) continue;
                    utterance = utterance(id, spoken.text(), random, heldOut, true);
                    turn(conversations, "<image>\n<audio>\n" + MM_ASR_INSTRUCTION, spoken.text());
                    line.put("text", spoken.text());
                }
                case MULTI_TURN -> {
                    Spoken spoken = pick(random, spokenQuestions(scene), s -> allowed.test(s.text()));
                    if (spoken == null) continue;
                    utterance = utterance(id, spoken.text(), random, heldOut, false);
                    turn(conversations, "<image>\n" + caption.question(), caption.answer());
                    turn(conversations, "<audio>", spoken.answer());
                    if (random.nextBoolean()) turn(conversations, question.question(), question.answer());
                    line.put("spoken", spoken.text());
                }
                default -> throw new IllegalArgumentException(task + " is not about an image");
            }
            if (utterance != null) audio(line, utterance);
            line.put("layout", scene.layout());
            used.add(scene.layout());
            return new Plan(task, line, scene, null, utterance);
        }
    }

    /** One question about a clip of {@link SyntheticVideos} (direction, colour, speed, caption or description). */
    private static Plan videoQuestion(ObjectNode line, String id, SplittableRandom random, Set<String> excluded,
                                      Set<String> used) {
        Clip clip;
        do {
            clip = SyntheticVideos.drawClip(id, random);
        } while (excluded.contains(clip.layout()) || used.contains(clip.layout()));
        used.add(clip.layout());
        List<SyntheticVideos.Sample> samples = SyntheticVideos.samples(clip, new SplittableRandom(random.nextLong()));
        SyntheticVideos.Sample sample = samples.get(random.nextInt(samples.size()));
        line.put("video", clip.file()).put("layout", clip.layout());
        turn(line.putArray("conversations"), "<video>\n" + sample.question(), sample.answer());
        line.put("language", sample.chinese() ? "zh" : "en");
        return new Plan(Task.VIDEO_QA, line, null, clip, null);
    }

    /**
     * Spoken questions about a scene, in the spoken form (lower case, no punctuation), each with its typed answer:
     * colour, shape, count and (one object) position, each behind every opening ("looking at the image ...").
     */
    static List<Spoken> spokenQuestions(Scene scene) {
        boolean one = scene.count() == 1;
        String shape = scene.shape().english, shapes = scene.shape().plural, colour = scene.colour().english;
        String count = SpeechSentences.numberWords(scene.count());
        List<Spoken> bare = new ArrayList<>(List.of(
                new Spoken(one ? "what colour is the " + shape : "what colour are the " + shapes, colour),
                new Spoken(one ? "what shape is the " + colour + " object" : "what shape are the " + colour + " objects",
                        shape),
                new Spoken("how many " + shapes + " are there", count),
                new Spoken("how many " + colour + " " + shapes + " can you see", count)));
        if (one) bare.add(new Spoken("where is the " + colour + " " + shape, scene.objects().get(0).region(false)));
        List<Spoken> out = new ArrayList<>();
        for (String prefix : QUESTION_PREFIXES) for (Spoken s : bare) out.add(new Spoken(prefix + s.text(), s.answer()));
        return out;
    }

    /** Sentences describing a scene (its colour, shape, count, sizes, one object's place), for multimodal ASR. */
    static List<Spoken> descriptions(Scene scene) {
        boolean one = scene.count() == 1;
        String count = SpeechSentences.numberWords(scene.count());
        String things = scene.colour().english + " " + (one ? scene.shape().english : scene.shape().plural);
        List<String> texts = new ArrayList<>(List.of(
                "there " + (one ? "is " : "are ") + count + " " + things + " in the picture",
                "i can see " + count + " " + things,
                "the picture shows " + count + " " + things,
                "this image has " + count + " " + things + " on a grey background",
                count + " " + things + " and nothing else",
                "somebody drew " + count + " " + things + " here"));
        boolean allLarge = scene.objects().stream().allMatch(SceneObject::large);
        boolean allSmall = scene.objects().stream().noneMatch(SceneObject::large);
        if (allLarge || allSmall) {
            texts.add("there " + (one ? "is " : "are ") + count + " " + (allLarge ? "large " : "small ") + things);
        }
        if (one) {
            SceneObject o = scene.objects().get(0);
            texts.add("the " + things + " is " + place(o.region(false)));
            texts.add("a " + (o.large() ? "large " : "small ") + things + " " + place(o.region(false)));
        }
        return texts.stream().map(t -> new Spoken(t, t)).toList();
    }

    /** "top left" → "in the top left corner", "left" → "on the left", "center" → "in the center". */
    private static String place(String region) {
        return switch (region) {
            case "top left", "top right", "bottom left", "bottom right" -> "in the " + region + " corner";
            case "left", "right" -> "on the " + region;
            case "top", "bottom" -> "at the " + region;
            default -> "in the " + region;
        };
    }

    /** Whether {@code text} is reserved for eval: a fixed function of the text, so the splits never share one. */
    static boolean isHeldOut(String text) {
        return Math.floorMod(mix(text.hashCode()), HELD_OUT_BUCKETS) == 0;
    }

    /**
     * Voice and augmentation as {@link SyntheticSpeech} draws them, but with the variant from this split's set
     * ({@link #EVAL_VARIANTS} or the others) and, for multimodal ASR, always noise at 0-6 dB.
     */
    private static Utterance utterance(String id, String text, SplittableRandom random, boolean heldOut, boolean noisy) {
        String[] variants = Arrays.stream(SyntheticSpeech.VARIANTS).filter(v -> EVAL_VARIANTS.contains(v) == heldOut)
                .toArray(String[]::new);
        String accent = SyntheticSpeech.ENGLISH_VOICES[random.nextInt(SyntheticSpeech.ENGLISH_VOICES.length)];
        String variant = variants[random.nextInt(variants.length)];
        String voice = variant.isEmpty() ? accent : accent + "+" + variant;
        int rate = random.nextInt(130, 191);
        int pitch = random.nextInt(30, 71);
        double speed = SyntheticSpeech.SPEEDS[random.nextInt(SyntheticSpeech.SPEEDS.length)];
        double snr = noisy ? random.nextDouble(MM_ASR_MIN_SNR_DB, MM_ASR_MAX_SNR_DB)
                : random.nextDouble() < SyntheticSpeech.CLEAN_FRACTION ? Double.NaN
                : random.nextDouble(SyntheticSpeech.MIN_SNR_DB, SyntheticSpeech.MAX_SNR_DB);
        return new Utterance(id, "en", text, text, voice, rate, pitch, speed, snr, random.nextBoolean(), random.nextLong());
    }

    private static ObjectNode audio(ObjectNode line, Utterance u) {
        line.put("audio", "audio/" + u.id() + ".wav").put("voice", u.voice());
        if (Double.isNaN(u.snrDb())) line.putNull("snr_db");
        else line.put("snr_db", Math.round(u.snrDb() * 10) / 10.0).put("noise", u.brownNoise() ? "brown" : "white");
        return line;
    }

    /** The {@link AsrSample} line of a multimodal-ASR conversation. */
    private static ObjectNode asrLine(Plan plan) {
        ObjectNode line = plan.line();
        ObjectNode out = JSON.createObjectNode();
        for (String field : new String[] {"id", "audio", "text", "image", "task", "voice", "snr_db"}) {
            out.set(field, line.get(field));
        }
        return out;
    }

    private static void conversation(ObjectNode line, String human, String answer) {
        turn(line.putArray("conversations"), human, answer);
    }

    private static void turn(ArrayNode conversations, String human, String answer) {
        conversations.addObject().put("from", "human").put("value", human);
        conversations.addObject().put("from", "gpt").put("value", answer);
    }

    private static String draw(SplittableRandom random, java.util.function.Function<SplittableRandom, String> grammar,
                               Predicate<String> allowed) {
        for (int attempt = 0; attempt < 10_000; attempt++) {
            String text = grammar.apply(random);
            if (allowed.test(text)) return text;
        }
        throw new IllegalStateException("the sentence grammar ran out of sentences for this split");
    }

    /** A uniformly drawn element satisfying {@code test}, or null when none does. */
    private static <T> T pick(SplittableRandom random, List<T> values, Predicate<T> test) {
        List<T> candidates = values.stream().filter(test).toList();
        return candidates.isEmpty() ? null : candidates.get(random.nextInt(candidates.size()));
    }

    /** Renders every plan's image, clip and WAV with {@code workers} threads; returns the counts of each. */
    private static int[] render(Path outDir, List<Plan> plans, int workers, boolean progress) throws IOException {
        Files.createDirectories(outDir.resolve("images"));
        Files.createDirectories(outDir.resolve("videos"));
        Files.createDirectories(outDir.resolve("audio"));
        Path espeak = plans.stream().anyMatch(p -> p.utterance() != null) ? SyntheticSpeech.Espeak.locate() : null;
        List<Callable<Void>> jobs = new ArrayList<>();
        int[] counts = new int[3];
        for (Plan plan : plans) {
            if (plan.scene() != null) {
                counts[0]++;
                jobs.add(() -> {
                    Files.write(outDir.resolve("images/" + plan.scene().id() + ".png"),
                            SyntheticScenes.png(SyntheticScenes.render(plan.scene())));
                    return null;
                });
            }
            if (plan.clip() != null) {
                counts[1]++;
                jobs.add(() -> {
                    Files.write(outDir.resolve(plan.clip().file()), SyntheticVideos.encode(plan.clip()));
                    return null;
                });
            }
            if (plan.utterance() != null) {
                counts[2]++;
                jobs.add(() -> {
                    Utterance u = plan.utterance();
                    WavWriter.write(outDir.resolve("audio/" + u.id() + ".wav"), SyntheticSpeech.render(espeak, u),
                            SyntheticSpeech.SAMPLE_RATE);
                    return null;
                });
            }
        }
        ProgressBar bar = progress ? ProgressBar.stderr(jobs.size(), "file")
                : new ProgressBar(jobs.size(), "file", new PrintStream(OutputStream.nullOutputStream()), false,
                System::nanoTime, 30);
        bar.start(0);
        int[] done = {0};
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, workers));
        try {
            List<Future<Void>> futures = new ArrayList<>();
            for (Callable<Void> job : jobs) {
                futures.add(pool.submit(() -> {
                    job.call();
                    synchronized (bar) {
                        bar.update(++done[0], Double.NaN, Double.NaN, 1);
                    }
                    return null;
                }));
            }
            for (Future<Void> f : futures) f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            if (e.getCause() instanceof RuntimeException re) throw re;
            throw new IOException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while rendering the instruction set", e);
        } finally {
            pool.shutdownNow();
            bar.finish();
        }
        return counts;
    }

    private static Map<String, Integer> taskCounts(List<Plan> plans) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (Task task : Task.values()) counts.put(task.label, 0);
        for (Plan plan : plans) counts.merge(plan.task().label, 1, Integer::sum);
        return counts;
    }

    private static void writeSummary(Path outDir, Summary summary, long seed, List<Plan> evalPlans) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("seed", seed);
        ObjectNode splits = root.putObject("splits");
        summary.tasks().forEach((split, counts) -> {
            ObjectNode node = splits.putObject(split);
            node.put("conversations", counts.values().stream().mapToInt(Integer::intValue).sum());
            counts.forEach(node.putObject("tasks")::put);
        });
        root.put("eval-mmasr", evalPlans.stream().filter(p -> p.task() == Task.MM_ASR).count());
        root.put("eval-spoken-image", evalPlans.stream().filter(p -> p.task() == Task.SPOKEN_IMAGE_QA).count());
        root.put("images", summary.images()).put("clips", summary.clips()).put("utterances", summary.utterances());
        EVAL_VARIANTS.stream().sorted().forEach(root.putArray("eval_voice_variants")::add);
        root.put("held_out_text_buckets", HELD_OUT_BUCKETS);
        root.put("seconds", Math.round(summary.seconds() * 10) / 10.0);
        write(outDir.resolve("summary.json"), List.of(root));
    }

    /** One JSON value a line, to a temporary file renamed over {@code path}. */
    private static void write(Path path, List<ObjectNode> lines) throws IOException {
        Path temp = path.resolveSibling(path.getFileName() + ".tmp");
        try (Writer writer = Files.newBufferedWriter(temp, StandardCharsets.UTF_8)) {
            for (ObjectNode line : lines) {
                writer.write(JSON.writeValueAsString(line));
                writer.write('\n');
            }
        }
        Files.move(temp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** SplitMix64 finaliser: decorrelates (seed, index) pairs. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
