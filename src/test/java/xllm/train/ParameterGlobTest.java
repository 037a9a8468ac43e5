package xllm.train;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ParameterGlobTest {

    static final List<String> NAMES = List.of(
            "imageInterface.qformer.queryTokens",
            "imageInterface.qformer.layers.0.attention.query.weight",
            "imageInterface.qformer.layers.0.attention.query.bias",
            "imageInterface.qformer.layers.1.crossAttention.key.weight",
            "imageInterface.adapter.weight",
            "imageInterface.adapter.bias",
            "imageInterfaceXadapter.weight",
            "llm.layers.0.mlp.gate.weight");

    static boolean matches(String glob, String name) {
        return ParameterGlob.compile(glob).matches(name);
    }

    @Test
    void starIsPartOfOneSegment() {
        assertTrue(matches("imageInterface.adapter.*", "imageInterface.adapter.weight"));
        assertFalse(matches("imageInterface.adapter.*", "imageInterface.adapter.inner.weight"));
        assertFalse(matches("imageInterface.*", "imageInterface.adapter.weight"));
        assertTrue(matches("imageInterface.qformer.layers.*.attention.query.weight",
                "imageInterface.qformer.layers.0.attention.query.weight"));
        assertTrue(matches("imageInterface.*Interface.x", "imageInterface.crossInterface.x"));
        assertTrue(matches("layers.1*.w", "layers.12.w"));
        assertTrue(matches("layers.1*.w", "layers.1.w"));            // partial * may match nothing
        assertFalse(matches("layers.1*.w", "layers.2.w"));
    }

    @Test
    void doubleStarSpansAnyNumberOfSegments() {
        assertTrue(matches("imageInterface.qformer.**", "imageInterface.qformer.queryTokens"));
        assertTrue(matches("imageInterface.qformer.**", "imageInterface.qformer.layers.0.attention.query.weight"));
        assertFalse(matches("imageInterface.qformer.**", "imageInterface.qformer"));   // a.** is what lies below a
        assertTrue(matches("**.bias", "bias"));
        assertTrue(matches("**.bias", "imageInterface.adapter.bias"));
        assertFalse(matches("**.bias", "imageInterface.adapter.biases"));
        assertTrue(matches("a.**.w", "a.w"));
        assertTrue(matches("a.**.w", "a.x.w"));
        assertTrue(matches("a.**.w", "a.x.y.w"));
        assertFalse(matches("a.**.w", "ab.w"));
        assertTrue(matches("**", "anything.at.all"));
    }

    @Test
    void dotsAndOtherCharactersAreLiteral() {
        assertTrue(matches("imageInterface.adapter.weight", "imageInterface.adapter.weight"));
        assertFalse(matches("imageInterface.adapter.weight", "imageInterfaceXadapter.weight"));
        assertFalse(matches("imageInterface.adapter.*", "imageInterfaceXadapter.weight"));
        assertTrue(matches("a+b.(c)", "a+b.(c)"));
        assertFalse(matches("a+b.(c)", "aab.c"));
        assertFalse(matches("adapter", "imageInterface.adapter"));   // whole names only
    }

    @Test
    void matchListsNamesPerGlobInOrder() {
        Map<String, List<String>> result = ParameterGlob.match(
                List.of("imageInterface.adapter.*", "**.query.*", "videoInterface.**"), NAMES);
        assertEquals(List.of("imageInterface.adapter.*", "**.query.*", "videoInterface.**"),
                List.copyOf(result.keySet()));
        assertEquals(List.of("imageInterface.adapter.weight", "imageInterface.adapter.bias"),
                result.get("imageInterface.adapter.*"));
        assertEquals(List.of("imageInterface.qformer.layers.0.attention.query.weight",
                "imageInterface.qformer.layers.0.attention.query.bias"), result.get("**.query.*"));
        assertEquals(List.of(), result.get("videoInterface.**"));
    }

    @Test
    void malformedGlobsAreRefused() {
        for (String bad : List.of("", "a..b", ".a", "a.", "a.**.**.b", "layer**", "a b")) {
            assertThrows(IllegalArgumentException.class, () -> ParameterGlob.compile(bad), bad);
        }
    }

    @Test
    void closestNamesRankByPrefixDistance() {
        List<String> close = ParameterGlob.closest("imageInterface.adaptr.*", NAMES, 5);
        assertEquals(5, close.size());
        assertTrue(close.subList(0, 2).containsAll(List.of("imageInterface.adapter.weight",
                "imageInterface.adapter.bias")), close.toString());
        assertEquals(2, ParameterGlob.closest("x", List.of("a", "b"), 5).size());
        assertEquals(3, ParameterGlob.editDistance("kitten", "sitting"));
    }
}
