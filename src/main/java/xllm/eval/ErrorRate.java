package xllm.eval;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Character and word error rates for ASR (English, Mandarin and mixed text), with the edit counts behind them.
 *
 * <p><b>Normalisation</b> (both sides, before any counting): NFKC (full-width letters, digits and punctuation
 * become half-width: {@code ＡＢ１，} → {@code AB1,}), lower case, punctuation (Unicode class P, which includes
 * CJK punctuation such as 。，、？！「」《》) replaced by a space except an apostrophe between two letters
 * ({@code o'clock} stays one word), whitespace collapsed to one space and trimmed, and every space next to a CJK
 * character (Han, Hiragana, Katakana) removed, since those scripts do not separate words with spaces.
 *
 * <p><b>Tokens.</b> WER counts words: runs of non-space characters, except that each CJK character is a word of its
 * own (the usual "mixed error rate": Mandarin WER is therefore its CER). CER counts the code points of the
 * normalised text. For CJK there are no spaces left to count; for English the single spaces between words are
 * kept as characters (as jiwer and torchmetrics do), so that a merged or split word ("a cat" vs "acat") is an
 * error rather than free.
 *
 * <p><b>Edit counts</b> come from one minimum-cost Levenshtein alignment (unit costs); among equally cheap
 * alignments the backtrace prefers a match or substitution, then a deletion, then an insertion, so counts are
 * deterministic. A rate is (S + D + I) / N, N the reference length; an utterance with an empty reference has
 * N = 0 and its rate is I / 1 (every inserted token counts as one whole reference's worth of error), never
 * infinite. Corpus rates sum edits and reference lengths over utterances (micro average). The alignment keeps two
 * rows, not the table, and refuses more than {@link #MAX_ALIGNMENT_CELLS} cells, so a long text costs memory in
 * proportion to its length and never runs for hours.
 */
public final class ErrorRate {

    /** Substitutions, deletions and insertions aligning a hypothesis to a reference of {@code referenceLength}. */
    public record Edits(int substitutions, int deletions, int insertions, int referenceLength) {
        public static final Edits NONE = new Edits(0, 0, 0, 0);

        public int errors() {
            return substitutions + deletions + insertions;
        }

        /** errors / N; for an empty reference errors / 1. */
        public double rate() {
            return errors() / (double) Math.max(referenceLength, 1);
        }

        public Edits plus(Edits other) {
            return new Edits(substitutions + other.substitutions, deletions + other.deletions,
                    insertions + other.insertions, referenceLength + other.referenceLength);
        }
    }

    /** One utterance: raw and normalised texts, character and word edits. */
    public record Row(String id, String reference, String hypothesis, String normalisedReference,
                      String normalisedHypothesis, Edits characters, Edits words) {
        public double cer() {
            return characters.rate();
        }

        public double wer() {
            return words.rate();
        }
    }

    /** Totals over rows; {@code exact} counts utterances whose normalised hypothesis equals the reference. */
    public record Summary(int utterances, int exact, Edits characters, Edits words) {
        public double cer() {
            return characters.rate();
        }

        public double wer() {
            return words.rate();
        }

        public double sentenceErrorRate() {
            return utterances == 0 ? 0 : 1 - exact / (double) utterances;
        }
    }

    private ErrorRate() {}

    /** The normalisation described in the class comment. */
    public static String normalise(String text) {
        String s = Normalizer.normalize(text, Normalizer.Form.NFKC).toLowerCase(Locale.ROOT);
        int[] cps = s.codePoints().toArray();
        StringBuilder spaced = new StringBuilder(s.length());
        for (int i = 0; i < cps.length; i++) {
            int c = cps[i];
            boolean apostrophe = (c == '\'' || c == '\u2019') && i > 0 && i + 1 < cps.length
                    && Character.isLetter(cps[i - 1]) && Character.isLetter(cps[i + 1]);
            if (apostrophe) spaced.append('\'');
            else if (isPunctuation(c) || Character.isWhitespace(c) || Character.isSpaceChar(c)) spaced.append(' ');
            else spaced.appendCodePoint(c);
        }
        // collapse spaces, dropping any space that touches a CJK character
        int[] chars = spaced.toString().strip().codePoints().toArray();
        StringBuilder out = new StringBuilder(chars.length);
        for (int i = 0; i < chars.length; i++) {
            int c = chars[i];
            if (c != ' ') {
                out.appendCodePoint(c);
                continue;
            }
            int next = i + 1;
            while (next < chars.length && chars[next] == ' ') next++;
            int previous = out.length() == 0 ? -1 : out.codePointBefore(out.length());
            if (previous >= 0 && next < chars.length && !isCjk(previous) && !isCjk(chars[next])) out.append(' ');
            i = next - 1;
        }
        return out.toString();
    }

    /** Words of normalised text: space-separated runs, each CJK character its own word. */
    public static List<String> words(String normalised) {
        List<String> out = new ArrayList<>();
        forEachWord(normalised, out::add);
        return out;
    }

    private static void forEachWord(String normalised, java.util.function.Consumer<String> action) {
        StringBuilder word = new StringBuilder();
        normalised.codePoints().forEach(c -> {
            if (c == ' ' || isCjk(c)) {
                if (word.length() > 0) action.accept(word.toString());
                word.setLength(0);
                if (c != ' ') action.accept(new String(Character.toChars(c)));
            } else {
                word.appendCodePoint(c);
            }
        });
        if (word.length() > 0) action.accept(word.toString());
    }

    /** The words of normalised text as ids of {@code vocabulary} (which grows), for {@link #align(int[], int[])}. */
    private static int[] wordIds(String normalised, Map<String, Integer> vocabulary) {
        java.util.stream.IntStream.Builder ids = java.util.stream.IntStream.builder();
        forEachWord(normalised, word -> ids.add(vocabulary.computeIfAbsent(word, w -> vocabulary.size())));
        return ids.build().toArray();
    }

    /** Code points of normalised text, as strings (so CER and WER share one alignment routine). */
    public static List<String> characters(String normalised) {
        List<String> out = new ArrayList<>();
        normalised.codePoints().forEach(c -> out.add(new String(Character.toChars(c))));
        return out;
    }

    /** Normalises both texts and counts character and word edits. */
    public static Row score(String id, String reference, String hypothesis) {
        String ref = normalise(reference);
        String hyp = normalise(hypothesis);
        // tokens as ints (code points; word ids): a long text costs 4 bytes a token, not a String each
        Map<String, Integer> vocabulary = new HashMap<>();
        return new Row(id, reference, hypothesis, ref, hyp, align(ref.codePoints().toArray(), hyp.codePoints().toArray()),
                align(wordIds(ref, vocabulary), wordIds(hyp, vocabulary)));
    }

    public static double cer(String reference, String hypothesis) {
        return score("", reference, hypothesis).cer();
    }

    public static double wer(String reference, String hypothesis) {
        return score("", reference, hypothesis).wer();
    }

    public static Summary summarise(List<Row> rows) {
        Edits characters = Edits.NONE, words = Edits.NONE;
        int exact = 0;
        for (Row row : rows) {
            characters = characters.plus(row.characters());
            words = words.plus(row.words());
            if (row.normalisedReference().equals(row.normalisedHypothesis())) exact++;
        }
        return new Summary(rows.size(), exact, characters, words);
    }

    /**
     * Most dynamic-programming cells one alignment may take (the differing middle of reference × hypothesis, after
     * their common prefix and suffix): 2³² cells, a few seconds. Larger is refused: an hour-long single utterance
     * against an unrelated hypothesis would otherwise run for hours.
     */
    public static final long MAX_ALIGNMENT_CELLS = 1L << 32;

    /**
     * Levenshtein alignment of token lists with S/D/I counts (deterministic tie-breaking, see class comment), in
     * memory linear in the hypothesis length.
     *
     * <p>The backtrace from a cell takes the same steps whichever path led the forward pass there, so each cell
     * carries the counts of its own backtrace: the counts of the neighbour the backtrace would step to, plus that
     * step. Two rows of (cost, S) then give the counts a full table's backtrace gives. A common prefix and
     * suffix are matches on that backtrace (a matching last pair always lies on it: cost[i][j] = cost[i-1][j-1]),
     * so only the middle is aligned.
     *
     * @throws IllegalArgumentException when the middle exceeds {@link #MAX_ALIGNMENT_CELLS}
     */
    public static Edits align(List<String> reference, List<String> hypothesis) {
        Map<String, Integer> vocabulary = new HashMap<>();
        return align(tokenIds(reference, vocabulary), tokenIds(hypothesis, vocabulary));
    }

    /** As {@link #align(List, List)}, on tokens given as ints (equal tokens, equal ints). */
    static Edits align(int[] ref, int[] hyp) {
        int n = ref.length, m = hyp.length;
        int prefix = 0;
        while (prefix < n && prefix < m && ref[prefix] == hyp[prefix]) prefix++;
        int suffix = 0;
        while (suffix < n - prefix && suffix < m - prefix && ref[n - 1 - suffix] == hyp[m - 1 - suffix]) suffix++;
        int rows = n - prefix - suffix, columns = m - prefix - suffix;
        if ((long) (rows + 1) * (columns + 1) > MAX_ALIGNMENT_CELLS) {
            throw new IllegalArgumentException("aligning " + n + " reference tokens with " + m + " hypothesis tokens "
                    + "needs " + (long) (rows + 1) * (columns + 1) + " cells, over the limit of " + MAX_ALIGNMENT_CELLS
                    + " (split the utterance)");
        }
        // Rows i - 1 (previous) and i of the middle: the cost and substitutions of each cell's backtrace. Its
        // deletions and insertions follow: D + I = cost - S, and D - I = i - j (every step moves down, right or both).
        int[] previousCost = new int[columns + 1], previousS = new int[columns + 1];
        int[] cost = new int[columns + 1], s = new int[columns + 1];
        for (int j = 0; j <= columns; j++) previousCost[j] = j; // row 0: the backtrace can only insert
        for (int i = 1; i <= rows; i++) {
            cost[0] = i; // column 0: the backtrace can only delete
            s[0] = 0;
            int token = ref[prefix + i - 1];
            for (int j = 1; j <= columns; j++) {
                int substitution = token == hyp[prefix + j - 1] ? 0 : 1;
                int diagonal = previousCost[j - 1] + substitution, up = previousCost[j] + 1, left = cost[j - 1] + 1;
                if (diagonal <= up && diagonal <= left) { // the backtrace prefers a match or substitution,
                    cost[j] = diagonal;
                    s[j] = previousS[j - 1] + substitution;
                } else if (up <= left) { // then a deletion,
                    cost[j] = up;
                    s[j] = previousS[j];
                } else { // then an insertion
                    cost[j] = left;
                    s[j] = s[j - 1];
                }
            }
            int[] swap = previousCost;
            previousCost = cost;
            cost = swap;
            swap = previousS;
            previousS = s;
            s = swap;
        }
        int substitutions = previousS[columns], indels = previousCost[columns] - substitutions;
        int deletions = (indels + rows - columns) / 2;
        return new Edits(substitutions, deletions, indels - deletions, n);
    }

    /** Each token as a small integer (equal strings, equal ids), so the alignment loop compares ints. */
    private static int[] tokenIds(List<String> tokens, Map<String, Integer> vocabulary) {
        int[] ids = new int[tokens.size()];
        for (int k = 0; k < ids.length; k++) ids[k] = vocabulary.computeIfAbsent(tokens.get(k), t -> vocabulary.size());
        return ids;
    }

    /** Han, Hiragana or Katakana: the scripts written without spaces between words. */
    public static boolean isCjk(int codePoint) {
        Character.UnicodeScript script = Character.UnicodeScript.of(codePoint);
        return script == Character.UnicodeScript.HAN || script == Character.UnicodeScript.HIRAGANA
                || script == Character.UnicodeScript.KATAKANA;
    }

    private static boolean isPunctuation(int c) {
        return switch (Character.getType(c)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                    Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                    Character.OTHER_PUNCTUATION -> true;
            default -> false;
        };
    }
}
