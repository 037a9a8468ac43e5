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

    /** Prompt {@code length} tokens long, shifted by {@code seed} so that rows differ. */
    private static long[] prompt(int length, int seed) {
        long[] ids = LlamaModelTest.prompt(length);
        for (int i = 0; i < length; i++) ids[i] = 3 + (ids[i] + seed * 11L) % 500;
        return ids;
    }

    @Test
    void rowsThatJoinAndLeaveARunningSessionGetTheTokensTheyGetAlone() {
        Generator generator = withoutEndTokens();
        long[] a = prompt(12, 0), b = prompt(5, 1), c = prompt(30, 2), d = prompt(8, 3);
        int[] budgets = {10, 4, 12, 6};
        long[][] prompts = {a, b, c, d};
        java.util.Map<String, long[]> got = new java.util.HashMap<>();
        StringBuilder streamedB = new StringBuilder();
        try (NDManager scope = manager.newSubManager();
             Generator.Session<String> session = generator.session()) {
            session.add(generator.embed(List.of(a), scope), List.of("a"), List.of(Generator.Options.greedy(budgets[0])),
                    List.of((row, text) -> {}));
            for (int i = 0; i < 3; i++) assertTrue(session.step().isEmpty());
            // b is shorter than the running history and c longer: both sides get left-padded when they join
            assertTrue(session.fits(30, List.of(Generator.Options.greedy(4), Generator.Options.greedy(12))));
            session.add(generator.embed(List.of(b, c), scope), List.of("b", "c"),
                    List.of(Generator.Options.greedy(budgets[1]), Generator.Options.greedy(budgets[2])),
                    List.of((row, text) -> streamedB.append(text), (row, text) -> {}));
            assertEquals(3, session.size());
            int steps = 0;
            while (session.size() > 0) {
                for (Generator.Ended<String> e : session.step()) got.put(e.key(), e.completion().tokenIds());
                if (++steps == 5) {
                    // b has left by now (4 tokens); d joins the rows still running, after the trim
                    assertTrue(got.containsKey("b") && !got.containsKey("c"), got.keySet().toString());
                    session.add(generator.embed(List.of(d), scope), List.of("d"),
                            List.of(Generator.Options.greedy(budgets[3])), List.of((row, text) -> {}));
                }
            }
            assertEquals(java.util.Set.of("a", "b", "c", "d"), got.keySet());
        }
        for (int i = 0; i < prompts.length; i++) {
            Generator.Completion alone = generator.generate(List.of(prompts[i]), Generator.Options.greedy(budgets[i]),
                    null).get(0);
            assertArrayEquals(alone.tokenIds(), got.get("abcd".substring(i, i + 1)), "row " + "abcd".charAt(i));
            if (i == 1) assertEquals(alone.text(), streamedB.toString(), "b streamed its whole text");
        }
    }

    @Test
    void aGroupThatWouldTakeTheContextOfARunningRowDoesNotFit() {
        Generator generator = withoutEndTokens();
        try (NDManager scope = manager.newSubManager();
             Generator.Session<String> session = generator.session()) {
            assertTrue(session.fits(250, List.of(Generator.Options.greedy(100))), "an empty session takes anything");
            session.add(generator.embed(List.of(prompt(20, 0)), scope), List.of("a"),
                    List.of(Generator.Options.greedy(200)), List.of((row, text) -> {}));
            session.step();
            // a's 199 tokens still to come need the positions after the joined history of 60
            assertFalse(session.fits(60, List.of(Generator.Options.greedy(1))));
            assertTrue(session.fits(40, List.of(Generator.Options.greedy(1))));
            // a newcomer whose own budget would be cut by joining waits too
            assertFalse(session.fits(20, List.of(Generator.Options.greedy(240))));
        }
    }
}
