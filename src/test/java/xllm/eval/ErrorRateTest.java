package xllm.eval;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
}
