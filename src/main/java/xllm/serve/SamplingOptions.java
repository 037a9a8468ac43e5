package xllm.serve;

import picocli.CommandLine.Option;
import xllm.llm.Generator;
import xllm.llm.Sampler;

import java.util.ArrayList;
import java.util.List;

/** Decoding flags shared by {@code generate} and {@code chat}. */
final class SamplingOptions {

    @Option(names = "--max-tokens", defaultValue = "256", description = "Most new tokens to generate (default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0.2",
            description = "Sampling temperature; 0 = greedy, deterministic (default ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "Keep the k most likely tokens; 0 = off (default ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", defaultValue = "0.9", description = "Nucleus sampling mass (default ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--repetition-penalty", defaultValue = "1.0",
            description = "Divides the scores of tokens already present, as transformers does (default ${DEFAULT-VALUE}).")
    float repetitionPenalty;

    @Option(names = "--seed", defaultValue = "0", description = "Random seed of the sampler (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--stop", description = "Stop when this string appears (repeatable); it is not printed.")
    List<String> stop = new ArrayList<>();

    /** @throws IllegalArgumentException naming the flag ("--top-p must be in (0, 1], got NaN") */
    Generator.Options toOptions() {
        Sampler.Options sampler;
        try {
            sampler = new Sampler.Options(temperature, topK, topP, repetitionPenalty, seed);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--" + e.getMessage(), e); // Sampler's messages start with the flag's name
        }
        try {
            return new Generator.Options(maxTokens, sampler, stop);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--max-tokens: " + e.getMessage(), e);
        }
    }
}
