package xllm.eval;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CER / WER on hand-counted cases; normalisation of case, punctuation, width and CJK spacing. */
class ErrorRateTest {

    @Test
    void englishCountsSubstitutionsAndDeletions() {
        ErrorRate.Row row = ErrorRate.score("en", "The cat sat on the mat.", "the cat sit on mat");
        // words: sat→sit (S), "the" dropped (D)
        assertEquals(new ErrorRate.Edits(1, 1, 0, 6), row.words());
        assertEquals(2 / 6.0, row.wer(), 1e-12);
        // characters (spaces count for English): a→i (S) and "the " (4 D) of 22
        assertEquals(new ErrorRate.Edits(1, 4, 0, 22), row.characters());
        assertEquals(5 / 22.0, row.cer(), 1e-12);
        // a shift is one deletion plus one insertion, cheaper than three substitutions
        assertEquals(new ErrorRate.Edits(0, 1, 1, 3), ErrorRate.score("x", "a b c", "b c d").words());
        // merged words are a character error
        assertEquals(1 / 5.0, ErrorRate.cer("a cat", "acat"), 1e-12);
    }

    @Test
    void chineseIsScoredPerCharacterWithoutSpacesOrPunctuation() {
        ErrorRate.Row row = ErrorRate.score("zh", "今天天气很好。", "今天 天汽 很好啊");
        // 气→汽 (S), 啊 inserted (I), of 6 characters; each Han character is a word too
        assertEquals(new ErrorRate.Edits(1, 0, 1, 6), row.characters());
        assertEquals(row.characters(), row.words());
        assertEquals(2 / 6.0, row.cer(), 1e-12);
        assertEquals(0.0, ErrorRate.cer("图中有两个红色的圆形！", "图 中 有 两 个 红 色 的 圆 形"), 0);
    }

    @Test
    void mixedTextMakesEachHanCharacterAWord() {
        ErrorRate.Row row = ErrorRate.score("mix", "我喜欢 Python 编程", "我喜欢python编成");
        assertEquals("我喜欢python编程", row.normalisedReference());
        assertEquals(List.of("我", "喜", "欢", "python", "编", "程"), ErrorRate.words(row.normalisedReference()));
        assertEquals(new ErrorRate.Edits(1, 0, 0, 6), row.words());
        assertEquals(new ErrorRate.Edits(1, 0, 0, 11), row.characters());
        assertEquals(List.of("abc", "你", "好", "def"), ErrorRate.words(ErrorRate.normalise("abc 你好 def")));
    }

    @Test
    void emptyReferenceOrHypothesis() {
        assertEquals(0.0, ErrorRate.wer("", ""), 0);
        assertEquals(0.0, ErrorRate.cer("。", "!!"), 0);
        ErrorRate.Row deleted = ErrorRate.score("d", "hello", "");
        assertEquals(new ErrorRate.Edits(0, 5, 0, 5), deleted.characters());
        assertEquals(1.0, deleted.cer(), 0);
        assertEquals(1.0, deleted.wer(), 0);
        ErrorRate.Row inserted = ErrorRate.score("i", "", "a b");
        assertEquals(new ErrorRate.Edits(0, 0, 2, 0), inserted.words());
        assertEquals(2.0, inserted.wer(), 0); // I / max(N, 1)
        assertEquals(3.0, inserted.cer(), 0); // "a b": three characters
    }

    @Test
    void normalisation() {
        assertEquals("hello world", ErrorRate.normalise("Ｈｅｌｌｏ，　ＷＯＲＬＤ！"));
        assertEquals("你好世界", ErrorRate.normalise("你 好 ，世界！"));
        assertEquals("它是什么颜色", ErrorRate.normalise("「它」是什么颜色？"));
        assertEquals("it's five o'clock", ErrorRate.normalise("  It's FIVE o'clock... "));
        assertEquals("cold hearted", ErrorRate.normalise("cold-hearted"));
        assertEquals("quoted", ErrorRate.normalise("'quoted'"));
        assertEquals("我like猫", ErrorRate.normalise("我 like 猫"));
        assertEquals("a b", ErrorRate.normalise("a\t\n  b"));
        assertEquals("123", ErrorRate.normalise("１２３"));
    }

    @Test
    void corpusRatesSumEditsOverUtterances() {
        ErrorRate.Summary summary = ErrorRate.summarise(List.of(
                ErrorRate.score("a", "the cat sat on the mat", "the cat sit on mat"),
                ErrorRate.score("b", "one two three", "One, two, three!")));
        assertEquals(2, summary.utterances());
        assertEquals(1, summary.exact());
        assertEquals(2 / 9.0, summary.wer(), 1e-12);
        assertEquals(5 / 35.0, summary.cer(), 1e-12); // 22 + 13 characters
        assertEquals(0.5, summary.sentenceErrorRate(), 1e-12);
    }

    /** The full-table alignment with its backtrace, as the class comment describes it: the reference for align. */
    private static ErrorRate.Edits fullTable(List<String> reference, List<String> hypothesis) {
        int n = reference.size(), m = hypothesis.size();
        int[][] cost = new int[n + 1][m + 1];
        for (int i = 0; i <= n; i++) cost[i][0] = i;
        for (int j = 0; j <= m; j++) cost[0][j] = j;
        for (int i = 1; i <= n; i++) {
            for (int j = 1; j <= m; j++) {
                int diagonal = cost[i - 1][j - 1] + (reference.get(i - 1).equals(hypothesis.get(j - 1)) ? 0 : 1);
                cost[i][j] = Math.min(diagonal, Math.min(cost[i - 1][j], cost[i][j - 1]) + 1);
            }
        }
        int s = 0, d = 0, ins = 0;
        for (int i = n, j = m; i > 0 || j > 0; ) {
            boolean same = i > 0 && j > 0 && reference.get(i - 1).equals(hypothesis.get(j - 1));
            if (i > 0 && j > 0 && cost[i][j] == cost[i - 1][j - 1] + (same ? 0 : 1)) {
                if (!same) s++;
                i--;
                j--;
            } else if (i > 0 && cost[i][j] == cost[i - 1][j] + 1) {
                d++;
                i--;
            } else {
                ins++;
                j--;
            }
        }
        return new ErrorRate.Edits(s, d, ins, n);
    }

    @Test
    void alignGivesTheFullTableCountsOnRandomTexts() {
        Random random = new Random(12);
        for (int trial = 0; trial < 20_000; trial++) {
            List<String> reference = randomTokens(random), hypothesis = randomTokens(random);
            assertEquals(fullTable(reference, hypothesis), ErrorRate.align(reference, hypothesis),
                    reference + " vs " + hypothesis);
            // score's own tokens (code points, word ids) give the same counts as the token lists
            String ref = String.join(" ", reference).replace('d', '你'), hyp = String.join("", hypothesis);
            ErrorRate.Row row = ErrorRate.score("r", ref, hyp);
            assertEquals(fullTable(ErrorRate.characters(row.normalisedReference()),
                    ErrorRate.characters(row.normalisedHypothesis())), row.characters(), ref + " vs " + hyp);
            assertEquals(fullTable(ErrorRate.words(row.normalisedReference()), ErrorRate.words(row.normalisedHypothesis())),
                    row.words(), ref + " vs " + hyp);
        }
    }

    private static List<String> randomTokens(Random random) {
        List<String> tokens = new ArrayList<>();
        int length = random.nextInt(13), alphabet = 1 + random.nextInt(4);
        for (int i = 0; i < length; i++) tokens.add(String.valueOf((char) ('a' + random.nextInt(alphabet))));
        return tokens;
    }

    @Test
    void aLongNearlyRightTranscriptIsScoredWithoutATable() {
        // a full (n+1)·(m+1) table would be 160 GB; only the differing middle needs aligning
        String reference = "abcdefghij".repeat(20_000);
        String hypothesis = reference.substring(0, 100_000) + "x" + reference.substring(100_001);
        ErrorRate.Row row = ErrorRate.score("long", reference, hypothesis);
        assertEquals(new ErrorRate.Edits(1, 0, 0, 200_000), row.characters());
        assertEquals(new ErrorRate.Edits(1, 0, 0, 1), row.words());
    }

    @Test
    void aLongReferenceAlignsInMemoryLinearInItsLength() throws Exception {
        // 200,000 × 200 characters: a table of ints would need 160 MB; the child has 48 MB
        // no character of the hypothesis occurs in the reference: 200 substitutions, the rest deleted
        assertEquals(new ErrorRate.Edits(200, 199_800, 0, 200_000).toString(), scoreInAChild("48m", "table"));
    }

    @Test
    void aTextThatNormalisationExpandsIsScoredAtFourBytesAToken() throws Exception {
        // NFKC turns U+FDFA into 18 characters (4 words): 131,072 of them are 2.4 million characters, which cost
        // over 80 MB as one String each
        assertEquals(new ErrorRate.Edits(10, 2_359_285, 0, 2_359_296).toString(), scoreInAChild("80m", "nfkc"));
    }

    /** Character edits of {@link ScoreInAChild} {@code which}, computed in a child JVM with {@code heap}. */
    private static String scoreInAChild(String heap, String which) throws Exception {
        Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx" + heap, "-cp", testClassPath(), ScoreInAChild.class.getName(), which)
                .redirectErrorStream(true).start();
        String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(child.waitFor(60, TimeUnit.SECONDS), "child did not finish");
        assertEquals(0, child.exitValue(), output);
        return output.strip();
    }

    /** Run in a child JVM with a small heap by the tests above. */
    public static final class ScoreInAChild {
        public static void main(String[] args) {
            ErrorRate.Row row = args[0].equals("table") ? ErrorRate.score("long", "ab".repeat(100_000), "xy".repeat(100))
                    : ErrorRate.score("nfkc", "\uFDFA".repeat(131_072), "hello world");
            System.out.println(row.characters());
        }
    }

    private static String testClassPath() {
        String surefire = System.getProperty("surefire.test.class.path");
        return surefire != null && !surefire.isBlank() ? surefire : System.getProperty("java.class.path");
    }

    @Test
    void anAlignmentTooLargeToFinishIsRefusedWithItsSizeAndTheLimit() {
        List<String> reference = ErrorRate.characters("a".repeat(100_000));
        List<String> hypothesis = ErrorRate.characters("b".repeat(100_000));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ErrorRate.align(reference, hypothesis));
        assertTrue(e.getMessage().contains("100000 reference tokens") && e.getMessage().contains("100000 hypothesis")
                && e.getMessage().contains(String.valueOf(ErrorRate.MAX_ALIGNMENT_CELLS)), e.getMessage());
    }
}
