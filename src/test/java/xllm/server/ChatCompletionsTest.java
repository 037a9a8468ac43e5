package xllm.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import xllm.serve.TinyJointModel;

import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The chat-completions API on one X-LLM checkpoint (the tiny joint model): every content part kind and their
 * combination in one turn, multi-turn history, streaming with the usage chunk equal to the whole answer, and batched
 * requests each keeping their own budget.
 */
class ChatCompletionsTest {

    static XllmServer server;
    static URI base;

    @BeforeAll
    static void start() throws Exception {
        server = XllmServer.start(TinyJointModel.checkpoint().toString(), ServerOptions.local());
        base = server.uri();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
    }

    static Path media(String task, String field) throws Exception {
        return ChatCompletionsMedia.file(task, field);
    }

    static Map<String, Object> text(String t) {
        return Map.of("type", "text", "text", t);
    }

    static Map<String, Object> image(Path png) throws Exception {
        return Map.of("type", "image_url", "image_url", Map.of("url", Http.dataUrl("image/png", png)));
    }

    static Map<String, Object> audio(Path wav) throws Exception {
        return Map.of("type", "input_audio", "input_audio", Map.of("data", Http.base64(wav), "format", "wav"));
    }

    static Map<String, Object> video(Path file) throws Exception {
        return Map.of("type", "video_url", "video_url", Map.of("url", Http.dataUrl("video/mp4", file)));
    }

    static Map<String, Object> request(List<?> messages, int maxTokens, boolean stream) {
        return Map.of("model", server.modelId(), "messages", messages, "max_tokens", maxTokens, "temperature", 0,
                "stream", stream, "stream_options", Map.of("include_usage", true));
    }

    static Map<String, Object> user(Object content) {
        return Map.of("role", "user", "content", content);
    }

    /** A non-streamed answer, checked for the OpenAI shape; returns its text. */
    static String answer(List<?> messages, int maxTokens) throws Exception {
        Http.Reply reply = Http.chat(base, request(messages, maxTokens, false));
        assertEquals(200, reply.status(), reply.body());
        JsonNode body = reply.json();
        assertEquals("chat.completion", body.get("object").asText());
        JsonNode choice = body.get("choices").get(0);
        assertEquals("assistant", choice.get("message").get("role").asText());
        assertTrue(List.of("stop", "length").contains(choice.get("finish_reason").asText()), reply.body());
        JsonNode usage = body.get("usage");
        assertTrue(usage.get("prompt_tokens").asInt() > 0 && usage.get("completion_tokens").asInt() <= maxTokens);
        assertEquals(usage.get("prompt_tokens").asInt() + usage.get("completion_tokens").asInt(),
                usage.get("total_tokens").asInt());
        return choice.get("message").get("content").asText();
    }

    @Test
    void modelsListTheCheckpointAndWhatItReads() throws Exception {
        JsonNode models = Http.get(base, "/v1/models").json();
        JsonNode entry = models.get("data").get(0);
        assertEquals(server.modelId(), entry.get("id").asText());
        assertEquals("[\"text\",\"image\",\"video\",\"audio\"]", entry.get("modalities").toString());
        assertEquals("{\"status\":\"ok\"}", Http.get(base, "/health").body());
    }

    @Test
    void everyPartKindAndTheirCombinationsAreAnswered() throws Exception {
        Path png = media("image-qa", "image"), wav = media("asr", "audio"), clip = media("video-qa", "video");
        answer(List.of(user(List.of(image(png), text("What colour is the shape?")))), 3);
        answer(List.of(user(List.of(video(clip), text("Which way does the shape move?")))), 3);
        answer(List.of(user(List.of(audio(wav), text("Please faithfully recognize the speech.")))), 3);
        Path spokenImage = media("spoken-image-qa", "image"), spoken = media("spoken-image-qa", "audio");
        answer(List.of(user(List.of(image(spokenImage), audio(spoken)))), 3);            // the speech is the question
        answer(List.of(user(List.of(image(png), text("What colour is the shape?"))),       // history with its media
                Map.of("role", "assistant", "content", "red"), user("And its shape?")), 3);
    }

    @Test
    void aStreamCarriesTheSameAnswerAsOneBodyAndEndsWithUsageAndDone() throws Exception {
        List<?> messages = List.of(user(List.of(image(media("image-qa", "image")), text("What colour is the shape?"))));
        String whole = answer(messages, 6);
        Http.Reply reply = Http.chat(base, request(messages, 6, true));
        assertEquals(200, reply.status(), reply.body());
        assertTrue(reply.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<String> events = reply.events();
        assertEquals("[DONE]", events.get(events.size() - 1));
        JsonNode first = Http.JSON.readTree(events.get(0));
        assertEquals("assistant", first.at("/choices/0/delta/role").asText());
        StringBuilder text = new StringBuilder();
        String finish = null;
        JsonNode usage = null;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode chunk = Http.JSON.readTree(e);
            assertEquals("chat.completion.chunk", chunk.get("object").asText());
            if (chunk.has("usage")) {
                usage = chunk.get("usage");
                assertEquals(0, chunk.get("choices").size());
                continue;
            }
            text.append(chunk.at("/choices/0/delta/content").asText(""));
            if (!chunk.at("/choices/0/finish_reason").isNull()) finish = chunk.at("/choices/0/finish_reason").asText();
        }
        assertEquals(whole, text.toString(), "greedy: the stream and the body agree");
        assertTrue(finish != null && usage != null, reply.body());
        assertTrue(usage.get("completion_tokens").asInt() <= 6);
    }

    @Test
    void requestsJoinARunningBatchAndLeaveItWithTheirOwnBudgets() throws Exception {
        List<?> messages = List.of(user(List.of(audio(media("asr", "audio")), text("Please faithfully recognize the speech."))));
        ExecutorService clients = Executors.newFixedThreadPool(9);
        try {
            // a long answer is decoding when eight short requests arrive together: with continuous batching they join
            // it, take their few tokens and leave while it still runs
            long requestsBefore = metric("xllm_batched_requests_total");
            Future<Long> longAnswer = clients.submit(() -> {
                Http.Reply reply = Http.chat(base, request(List.of(user("Count on.")), 150, false));
                long end = System.nanoTime();
                assertEquals(200, reply.status(), reply.body());
                assertEquals("length", reply.json().at("/choices/0/finish_reason").asText(), reply.body());
                return end;
            });
            long until = System.nanoTime() + 60_000_000_000L;
            while (metric("xllm_running_requests") < 1 && !longAnswer.isDone() && System.nanoTime() < until) {
                Thread.sleep(5);
            }
            CountDownLatch go = new CountDownLatch(1);
            List<Future<Long>> replies = new ArrayList<>();
            for (int budget = 1; budget <= 8; budget++) {
                Map<String, Object> body = request(messages, budget, false);
                int max = budget;
                replies.add(clients.submit(() -> {
                    go.await();
                    Http.Reply reply = Http.chat(base, body);
                    long end = System.nanoTime();
                    assertEquals(200, reply.status(), reply.body());
                    assertTrue(reply.json().at("/usage/completion_tokens").asInt() <= max, reply.body());
                    return end;
                }));
            }
            go.countDown();
            long lastShort = 0;
            for (Future<Long> reply : replies) lastShort = Math.max(lastShort, reply.get());
            long longEnd = longAnswer.get();
            assertEquals(9, metric("xllm_batched_requests_total") - requestsBefore);
            assertTrue(lastShort < longEnd, "the eight short answers ended before the long one: they joined its batch "
                    + "instead of waiting for it (" + (longEnd - lastShort) / 1e6 + " ms)");
        } finally {
            clients.shutdownNow();
        }
    }

    /** One sample of the Prometheus text. */
    static long metric(String name) throws Exception {
        for (String line : Http.get(base, "/metrics").body().split("\n")) {
            if (line.startsWith(name + " ")) return (long) Double.parseDouble(line.substring(name.length() + 1));
        }
        throw new AssertionError("no metric " + name);
    }

    @Test
    void aTextModelRefusesMediaAndAnXLlmRefusesASystemMessage() throws Exception {
        Http.Reply reply = Http.chat(base, request(List.of(Map.of("role", "system", "content", "Be brief."),
                user("Hi")), 2, false));
        assertEquals(400, reply.status());
        assertTrue(reply.json().at("/error/message").asText().contains("system message"), reply.body());
        assertEquals("messages[0]", reply.json().at("/error/param").asText());
        assertFalse(reply.body().isEmpty());
    }
}
