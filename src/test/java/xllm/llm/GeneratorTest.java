package xllm.llm;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The token budget against the model's context (256 positions for the tiny Llama). */
class GeneratorTest {

    static NDManager manager;
    static LanguageModel tiny;

    @BeforeAll
    static void load() throws IOException {
        manager = NDManager.newBaseManager();
        tiny = LanguageModel.open(LlamaModelTest.TINY, manager);
    }

    @AfterAll
    static void release() {
        tiny.close();
        manager.close();
    }

    /** A generator over the tiny Llama that never stops on an end token, so only the budget ends it. */
    private static Generator withoutEndTokens() {
        Generator generator = new Generator(tiny.model(), tiny.tokenizer());
        generator.endTokens().clear();
        return generator;
    }

    @Test
    void hugeMaxTokensStopsAtTheContext() {
        Generator generator = withoutEndTokens();
        Generator.Completion completion = generator.generate(List.of(LlamaModelTest.prompt(250)),
                Generator.Options.greedy(Integer.MAX_VALUE), null).get(0);
        assertEquals(6, completion.tokenIds().length, "250 prompt tokens leave 6 of the 256 positions");
        assertEquals(Generator.FinishReason.CONTEXT, completion.finishReason());
        // the same tokens as a budget that fits exactly, which ends by length
        Generator.Completion exact = generator.generate(List.of(LlamaModelTest.prompt(250)),
                Generator.Options.greedy(6), null).get(0);
        assertArrayEquals(exact.tokenIds(), completion.tokenIds());
        assertEquals(Generator.FinishReason.LENGTH, exact.finishReason());
    }

    @Test
    void budgetPastTheContextGivesTheSameTokensAsOneThatFits() {
        // a short prompt with a budget far past the context: the cache starts small and grows, tokens are unchanged
        Generator generator = withoutEndTokens();
        long[] prompt = LlamaModelTest.prompt(10);
        Generator.Completion unbounded = generator.generate(List.of(prompt), Generator.Options.greedy(Integer.MAX_VALUE), null).get(0);
        assertEquals(246, unbounded.tokenIds().length);
        assertEquals(Generator.FinishReason.CONTEXT, unbounded.finishReason());
        Generator.Completion bounded = generator.generate(List.of(prompt), Generator.Options.greedy(246), null).get(0);
        assertArrayEquals(bounded.tokenIds(), unbounded.tokenIds());
    }

    @Test
    void promptLongerThanTheContextNamesBothLengths() {
        for (int budget : new int[] {8, Integer.MAX_VALUE}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tiny.generator()
                    .generate(List.of(LlamaModelTest.prompt(300)), Generator.Options.greedy(budget), null));
            assertTrue(e.getMessage().contains("prompt of 300 tokens") && e.getMessage().contains("context of 256"),
                    e.getMessage());
        }
        // a prompt that fills the whole context leaves no room for a reply
        IllegalArgumentException full = assertThrows(IllegalArgumentException.class, () -> tiny.generator()
                .generate(List.of(LlamaModelTest.prompt(256)), Generator.Options.greedy(Integer.MAX_VALUE), null));
        assertTrue(full.getMessage().contains("prompt of 256 tokens") && full.getMessage().contains("context of 256"),
                full.getMessage());
    }

    @Test
    void embeddingPromptsAreCheckedAgainstTheContextToo() {
        try (NDManager scope = manager.newSubManager()) {
            long[] ids = LlamaModelTest.prompt(300);
            var embeddings = tiny.model().embed(scope.create(ids, new Shape(1, 300)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tiny.generator()
                    .generateFromEmbeddings(embeddings, LlamaModelTest.allValid(1, 300), List.of(ids),
                            Generator.Options.greedy(Integer.MAX_VALUE), null));
            assertTrue(e.getMessage().contains("prompt of 300 tokens") && e.getMessage().contains("context of 256"),
                    e.getMessage());
        }
    }
}
