package xllm.llm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import xllm.RealWeights;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Logits, greedy continuations and prompt ids against Hugging Face transformers (fixtures from
 * tools/reference/make_llm_fixtures.py): the tiny random Llama (Llama-3 RoPE scaling, untied head) and Qwen2
 * (q/k/v biases, tied head) to 1e-4, and the real SmolLM2-135M-Instruct GGUF (dequantised fp32) to 1e-3. Greedy
 * continuations are compared through {@link GreedyReference}: equal up to the first step whose top two logits are
 * within twice the logits' tolerance, where the CPU's kernels may pick either.
 */
class LlamaParityTest {

    static NDManager manager;

    @BeforeAll
    static void engine() {
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void release() {
        manager.close();
    }

    @Test
    void tinyLlamaMatchesTransformers() throws IOException {
        check("tiny-llama", ReferenceFixture.ROOT.resolve("tiny-llama"), 1e-4f);
    }

    @Test
    void tinyQwen2MatchesTransformers() throws IOException {
        check("tiny-qwen2", ReferenceFixture.ROOT.resolve("tiny-qwen2"), 1e-4f);
    }

    @Test
    void smolLm2MatchesTransformers() throws IOException {
        check("smollm2-135m-instruct", RealWeights.require("smollm2-135m-instruct"), 1e-3f);
    }

    private static void check(String name, java.nio.file.Path weights, float tolerance) throws IOException {
        ReferenceFixture fixture = new ReferenceFixture(name);
        try (LanguageModel lm = LanguageModel.open(weights, manager)) {
            for (JsonNode prompt : fixture.json.get("prompts")) {
                String text = prompt.get("text").asText();
                long[] ids = ReferenceFixture.ids(prompt.get("input_ids"));
                assertArrayEquals(ids, lm.tokenizer().encode(text), name + ": prompt ids of '" + text + "'");
                assertLogits(fixture, lm, ids, prompt, tolerance, name + " '" + text + "'");
                JsonNode greedy = prompt.get("greedy");
                Generator.Completion completion = lm.generator()
                        .generate(List.of(ids), Generator.Options.greedy(greedy.get("max_new_tokens").asInt()), null).get(0);
                GreedyReference.assertSameGreedy(lm.model(), ids, ReferenceFixture.ids(greedy.get("ids")),
                        completion.tokenIds(), 2 * tolerance, name + " '" + text + "'");
            }
            JsonNode chat = fixture.json.get("chat");
            if (chat != null) {
                JsonNode oneTurn = chat.get("one_turn");
                long[] ids = ReferenceFixture.ids(oneTurn.get("input_ids"));
                assertLogits(fixture, lm, ids, oneTurn, tolerance, name + " chat prompt");
                JsonNode greedy = oneTurn.get("greedy");
                Generator.Completion completion = lm.generator()
                        .generate(List.of(ids), Generator.Options.greedy(greedy.get("max_new_tokens").asInt()), null).get(0);
                long[] reference = ReferenceFixture.ids(greedy.get("ids"));
                int agreed = GreedyReference.assertSameGreedy(lm.model(), ids, reference, completion.tokenIds(),
                        2 * tolerance, name + " chat prompt");
                // the fixture's answer, checked while it has no near-tie (the margins are printed above)
                if (agreed == reference.length) {
                    assertEquals("The capital of France is Paris.", completion.text());
                }
            }
        }
    }

    private static void assertLogits(ReferenceFixture fixture, LanguageModel lm, long[] ids, JsonNode prompt,
                                     float tolerance, String what) throws IOException {
        String file = prompt.get("logits_file").asText();
        float[] expected = fixture.tensor(file, "logits");
        int vocab = lm.model().config().vocabSize();
        JsonNode positions = prompt.get("logits_positions");
        try (NDManager scope = manager.newSubManager()) {
            NDArray logits = lm.model().forwardTokens(scope.create(ids, new Shape(1, ids.length)), null);
            float[] actual = logits.toFloatArray();
            for (int i = 0; i < positions.size(); i++) {
                int position = positions.get(i).asInt();
                float difference = ReferenceFixture.maxAbsDifference(actual, position * vocab, expected, i * vocab, vocab);
                assertTrue(difference <= tolerance, what + ": position " + position + " logits differ by " + difference);
            }
        }
    }
}
