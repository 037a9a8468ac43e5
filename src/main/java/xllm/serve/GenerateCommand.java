package xllm.serve;

import ai.djl.ndarray.NDManager;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import xllm.llm.ChatTemplate;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code ./xllm generate}: one prompt in, only the completion out on stdout (logs on stderr), for scripts. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate one completion and print only it on stdout (progress and logs go to stderr).",
                "The prompt is wrapped in the model's chat template unless --raw is given."})
public final class GenerateCommand implements Callable<Integer> {

    @Mixin ModelOption modelOption;
    @Mixin SamplingOptions sampling;

    @Option(names = {"-p", "--prompt"}, description = "The prompt; '-' reads it from stdin. Required, except with "
            + "--audio, where leaving it out makes the speech itself the question.")
    String prompt;

    @Option(names = "--system", description = "System message (chat template only).")
    String system;

    @Option(names = "--raw", description = "Feed the prompt as plain text, without the chat template.")
    boolean raw;

    @Option(names = "--image", description = "Ask about this image; --model must then be an xllm training checkpoint "
            + "directory (its recipe names the LLM and image encoder). Uses the paper's prompt template.")
    java.nio.file.Path image;

    @Option(names = "--video", description = "Ask about this video (MP4/H.264, AVI MJPEG); --model must be a checkpoint "
            + "with a video interface (stage align-video).")
    java.nio.file.Path video;

    @Option(names = "--audio", description = "A WAV for a checkpoint with a speech interface. Without --prompt the "
            + "speech is the question and the LLM answers it; with --prompt \"Please faithfully recognize the speech.\" "
            + "it transcribes.")
    java.nio.file.Path audio;

    @Option(names = "--frames", description = "Frames sampled uniformly from the video (default: the training "
            + "recipe's model.videoFrames; the paper uses up to 10 at inference).")
    int frames;

    @Override
    public Integer call() throws Exception {
        Generator.Options options = sampling.toOptions(); // bad flags fail before a model is loaded
        if (prompt == null && audio == null) throw new IllegalArgumentException("--prompt is required (it may be left out only with --audio)");
        String text = prompt == null ? "" : prompt.equals("-") ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8) : prompt;
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        MediaOption media = MediaOption.of(image, video, audio);
        if (media != null) {
            java.nio.file.Path checkpoint = xllm.hub.ModelStore.defaultStore().resolve(modelOption.model);
            if (!xllm.model.MediaChat.isCheckpoint(checkpoint)) {
                throw new IllegalArgumentException(checkpoint + " is not an xllm training checkpoint (needs "
                        + "model.safetensors + config.json); --" + media.flag() + " needs one, e.g. runs/<stage>/checkpoints/step-N");
            }
            try (NDManager manager = NDManager.newBaseManager();
                 xllm.model.MediaChat chat = xllm.model.MediaChat.open(checkpoint, frames, manager)) {
                chat.requireModality(media.modality(), checkpoint);
                chat.answer(media.path(), text, options, (row, delta) -> out.print(delta));
                out.println();
            }
            return 0;
        }
        try (NDManager manager = NDManager.newBaseManager();
             LanguageModel lm = modelOption.open(manager)) {
            long[] ids;
            if (raw) {
                ids = lm.textPrompt(text);
            } else {
                List<ChatTemplate.Message> messages = new ArrayList<>();
                if (system != null) messages.add(new ChatTemplate.Message("system", system));
                messages.add(new ChatTemplate.Message("user", text));
                ids = lm.chatPrompt(messages);
            }
            long start = System.nanoTime();
            Generator.Completion completion = lm.generator()
                    .generate(List.of(ids), options, (row, delta) -> out.print(delta)).get(0);
            out.println();
            double seconds = (System.nanoTime() - start) / 1e9;
            System.err.printf("%d prompt + %d generated tokens in %.2f s (%s)%n", ids.length,
                    completion.tokenIds().length, seconds, completion.finishReason().name().toLowerCase());
        }
        return 0;
    }
}
