package xllm.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A small client for the Hugging Face hub's HTTP API: list a repo's files at a revision, download one file.
 *
 * <p>Follows huggingface_hub's {@code file_download.py}: files come from {@code /{repo}/resolve/{rev}/{path}}, which
 * redirects LFS files to a CDN and names their size and sha256 in {@code X-Linked-Size} / {@code X-Linked-Etag};
 * downloads land in {@code PATH.part}, resume with {@code Range: bytes=N-}, are checked (size; sha256 for LFS
 * files, the git blob id for small ones) and only then renamed into place. Redirects are followed by hand so the
 * token is never sent to another host. Tested against a local imitation of the hub (HubClientTest).
 */
public final class HubClient {

    public static final URI DEFAULT_ENDPOINT = URI.create("https://huggingface.co");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_REDIRECTS = 10;

    /**
     * One file of a repo as the listing reports it.
     *
     * @param path   path inside the repo ({@code model.safetensors}, {@code onnx/model.onnx})
     * @param size   bytes, or -1 when the listing did not say
     * @param sha256 sha256 of the content for LFS files, else null
     * @param blobId git object id (sha1 of "blob SIZE\0" + content) for non-LFS files, else null
     */
    public record HubFile(String path, long size, String sha256, String blobId) { }

    /** A repo's files at a revision; {@code commit} is the commit the revision pointed to (null if not given). */
    public record Listing(String commit, List<HubFile> files) {
        public Optional<HubFile> file(String path) {
            return files.stream().filter(f -> f.path().equals(path)).findFirst();
        }
    }

    private final URI endpoint;
    private final String token;           // bearer token, or null
    private final int retries;            // extra attempts after a dropped connection, each resuming the .part
    private final Duration retryDelay;
    private final HttpClient http;

    public HubClient(URI endpoint, String token, int retries, Duration retryDelay) {
        String base = endpoint.toString();
        this.endpoint = URI.create(base.endsWith("/") ? base.substring(0, base.length() - 1) : base);
        this.token = token == null || token.isBlank() ? null : token.trim();
        this.retries = retries;
        this.retryDelay = retryDelay;
        this.http = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NEVER) // by hand: see class comment
                .connectTimeout(Duration.ofSeconds(20))
                .build();
    }

    /** Endpoint from {@code HF_ENDPOINT} (default https://huggingface.co), token from {@code HF_TOKEN}. */
    public static HubClient fromEnvironment() {
        String endpoint = System.getenv("HF_ENDPOINT");
        return new HubClient(endpoint == null || endpoint.isBlank() ? DEFAULT_ENDPOINT : URI.create(endpoint.trim()),
                System.getenv("HF_TOKEN"), 3, Duration.ofSeconds(2));
    }

    public URI endpoint() {
        return endpoint;
    }

    /** {@code GET /api/models/{repo}/revision/{rev}?blobs=true}: the files with sizes and checksums. */
    public Listing list(String repo, String revision) throws IOException {
        URI uri = URI.create(endpoint + "/api/models/" + repo + "/revision/" + encode(revision) + "?blobs=true");
        Response response;
        try {
            response = send(uri, 0);
        } catch (IOException e) {
            throw new IOException("could not reach " + uri + " (" + describe(e) + "); check the network, "
                    + "or set HF_ENDPOINT to a reachable mirror", e);
        }
        try (InputStream body = response.http.body()) {
            if (response.http.statusCode() != 200) {
                throw failure(response, "repository " + repo + (revision.equals("main") ? "" : " at revision " + revision));
            }
            JsonNode root = JSON.readTree(body);
            List<HubFile> files = new ArrayList<>();
            for (JsonNode sibling : root.path("siblings")) {
                JsonNode lfs = sibling.path("lfs");
                String sha256 = lfs.path("sha256").asText(null);
                long size = lfs.has("size") ? lfs.path("size").asLong() : sibling.path("size").asLong(-1);
                files.add(new HubFile(sibling.path("rfilename").asText(), size, sha256,
                        sha256 == null ? sibling.path("blobId").asText(null) : null));
            }
            return new Listing(root.path("sha").asText(null), files);
        }
    }

    /**
     * Downloads one file to {@code target}, through {@code target.part}: resumes a part left by an earlier try,
     * retries a dropped connection, checks size and checksum, then renames. On a checksum or size mismatch the
     * part is deleted and nothing is left at {@code target}.
     */
    public void download(String repo, String revision, HubFile file, Path target, ProgressListener progress)
            throws IOException {
        URI uri = URI.create(endpoint + "/" + repo + "/resolve/" + encode(revision) + "/" + encodePath(file.path()));
        Path part = target.resolveSibling(target.getFileName() + ".part");
        Files.createDirectories(target.getParent());
        for (int attempt = 0; ; attempt++) {
            try {
                downloadOnce(uri, file, part, progress);
                break;
            } catch (DroppedTransfer e) {
                long kept = Files.exists(part) ? Files.size(part) : 0;
                if (attempt >= retries) {
                    throw new IOException("download of " + file.path() + " from " + uri + " failed"
                            + (retries > 0 ? " after " + (attempt + 1) + " attempts" : "") + ": " + e.getMessage()
                            + "; " + kept + " bytes are kept in " + part + ", run the pull again to resume", e);
                }
                progress.note(file.path() + ": " + e.getMessage() + "; retrying from byte " + kept);
                sleep(retryDelay.multipliedBy(attempt + 1));
            }
        }
        Files.move(part, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private void downloadOnce(URI uri, HubFile file, Path part, ProgressListener progress) throws IOException {
        long have = Files.exists(part) ? Files.size(part) : 0;
        if (file.size() >= 0 && have > file.size()) { // longer than the file can be: not ours, start over
            Files.delete(part);
            have = 0;
        }
        Response response;
        try {
            response = send(uri, have);
        } catch (IOException e) {
            throw new DroppedTransfer("could not reach " + uri + " (" + describe(e) + ")", e);
        }
        int status = response.http.statusCode();
        try (InputStream body = response.http.body()) {
            if (status == 416 && file.size() >= 0 && have == file.size()) {
                verify(uri, file, response, part, have, null); // an earlier try got everything but did not rename
                return;
            }
            if (status == 416) { // our part does not fit the server's file: start over
                Files.deleteIfExists(part);
                throw new DroppedTransfer("server refused to resume at byte " + have + " (HTTP 416)", null);
            }
            if (status != 200 && status != 206) {
                throw failure(response, "file " + file.path() + " in " + repoOf(uri));
            }
            if (status == 206) {
                long start = rangeStart(response.http.headers().firstValue("Content-Range").orElse(""));
                if (start != have) {
                    Files.deleteIfExists(part);
                    throw new DroppedTransfer("server resumed at byte " + start + ", not " + have, null);
                }
            } else if (have > 0) {
                progress.note(file.path() + ": the server ignored the Range request; downloading from the start");
                have = 0;
            }
            long expectedSize = file.size();
            if (expectedSize < 0 && response.linkedSize.isPresent()) expectedSize = response.linkedSize.get();
            var contentLength = response.http.headers().firstValueAsLong("Content-Length");
            if (expectedSize < 0 && contentLength.isPresent()) expectedSize = contentLength.getAsLong() + have;

            MessageDigest sha256 = Transfer.digest("SHA-256");
            if (have > 0) Transfer.update(sha256, part); // the checksum covers the bytes from the earlier try too
            progress.begin(file.path(), expectedSize, have);
            long written = have;
            try (OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    have > 0 ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
                written += Transfer.copy(body, new WriteGuard(out), sha256, have, progress);
            } catch (WriteGuard.WriteFailed e) {
                throw new IOException("could not write " + part + ": " + describe(e.getCause()), e.getCause());
            } catch (IOException e) {
                long kept = Files.exists(part) ? Files.size(part) : 0;
                throw new DroppedTransfer("connection dropped at byte " + kept
                        + (expectedSize >= 0 ? " of " + expectedSize : "") + " (" + describe(e) + ")", e);
            } finally {
                progress.end();
            }
            if (expectedSize >= 0 && written < expectedSize) {
                throw new DroppedTransfer("connection closed at byte " + written + " of " + expectedSize, null);
            }
            verify(uri, file, response, part, expectedSize, Transfer.hex(sha256));
        }
    }

    /** Size and checksum checks; on failure deletes the part so a corrupt file is never kept or resumed. */
    private static void verify(URI uri, HubFile file, Response response, Path part, long expectedSize,
                               String actualSha256) throws IOException {
        long size = Files.size(part);
        String problem = null;
        if (expectedSize >= 0 && size != expectedSize) {
            problem = "size " + size + " != expected " + expectedSize;
        } else {
            String expectedSha = file.sha256() != null ? file.sha256() : response.linkedEtag;
            if (expectedSha != null) {
                String actual = actualSha256 != null ? actualSha256 : Transfer.sha256(part);
                if (!actual.equals(expectedSha)) problem = "sha256 " + actual + " != expected " + expectedSha;
            } else if (file.blobId() != null) {
                String actual = Transfer.gitBlobId(part);
                if (!actual.equals(file.blobId())) problem = "git blob id " + actual + " != expected " + file.blobId();
            }
        }
        if (problem != null) {
            Files.deleteIfExists(part);
            throw new IOException("download of " + file.path() + " from " + uri + " is corrupt: " + problem
                    + "; the file was deleted");
        }
    }

    /** One GET, redirects followed by hand; the token only goes to the endpoint's host. */
    private Response send(URI uri, long rangeStart) throws IOException {
        Response result = new Response();
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder request = HttpRequest.newBuilder(uri).GET().timeout(Duration.ofSeconds(60))
                    .header("User-Agent", "xllm/0.1 (java.net.http)");
            if (token != null && sameOrigin(uri, endpoint)) request.header("Authorization", "Bearer " + token);
            if (rangeStart > 0) request.header("Range", "bytes=" + rangeStart + "-");
            HttpResponse<InputStream> response;
            try {
                response = http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
            var headers = response.headers();
            headers.firstValue("X-Linked-Etag").map(HubClient::unquote).filter(e -> SHA256.matcher(e).matches())
                    .ifPresent(e -> result.linkedEtag = e);
            headers.firstValue("X-Linked-Size").map(Long::parseLong).ifPresent(n -> result.linkedSize = Optional.of(n));
            headers.firstValue("X-Error-Code").ifPresent(c -> result.errorCode = c);
            Optional<String> location = headers.firstValue("Location");
            int status = response.statusCode();
            if (status >= 300 && status < 400 && location.isPresent()) {
                response.body().close();
                uri = uri.resolve(location.get());
                continue;
            }
            result.http = response;
            result.uri = uri;
            return result;
        }
        throw new IOException("more than " + MAX_REDIRECTS + " redirects, last to " + uri);
    }

    /** A clear error for a non-success status; {@code what} names what was asked for. */
    private IOException failure(Response response, String what) throws IOException {
        int status = response.http.statusCode();
        String detail = errorDetail(response.http.body());
        String code = response.errorCode == null ? "" : response.errorCode;
        String where = " (HTTP " + status + (code.isEmpty() ? "" : " " + code) + " from " + response.uri + (detail.isEmpty() ? "" : ": " + detail) + ")";
        return switch (status) {
            case 401 -> new IOException(what + " is private, gated or does not exist" + where + "; "
                    + (token == null ? "if it exists, set HF_TOKEN to an access token that can read it"
                                     : "the token in HF_TOKEN was rejected or cannot read it"));
            case 403 -> new IOException("access to " + what + " is denied" + where + "; if the repo is gated, accept "
                    + "its terms on the hub and set HF_TOKEN to a token of that account");
            case 404 -> new IOException(what + " not found" + where);
            case 429 -> new IOException("rate limited by the hub" + where + "; wait and pull again (resumes)");
            default -> new IOException("request for " + what + " failed" + where);
        };
    }

    private static String errorDetail(InputStream body) {
        try {
            String text = new String(body.readNBytes(2000), StandardCharsets.UTF_8).trim();
            if (text.startsWith("{")) {
                JsonNode error = JSON.readTree(text).path("error");
                if (error.isTextual()) return error.asText();
            }
            return text.length() > 200 ? text.substring(0, 200) + "..." : text;
        } catch (IOException e) {
            return "";
        }
    }

    private static long rangeStart(String contentRange) {
        // "bytes START-END/TOTAL"
        var m = Pattern.compile("bytes\\s+(\\d+)-").matcher(contentRange);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }

    private static boolean sameOrigin(URI a, URI b) {
        return a.getHost() != null && a.getHost().equalsIgnoreCase(b.getHost()) && a.getPort() == b.getPort()
                && a.getScheme().equalsIgnoreCase(b.getScheme());
    }

    private static String repoOf(URI resolveUri) {
        String path = resolveUri.getPath();
        int resolve = path.indexOf("/resolve/");
        return resolve > 0 ? path.substring(1, resolve) : path;
    }

    private static String unquote(String etag) {
        String e = etag.trim();
        if (e.startsWith("W/")) e = e.substring(2);
        if (e.startsWith("\"") && e.endsWith("\"") && e.length() >= 2) e = e.substring(1, e.length() - 1);
        return e.toLowerCase(Locale.ROOT);
    }

    private static String encode(String segment) {
        return URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static String encodePath(String path) {
        List<String> parts = new ArrayList<>();
        for (String s : path.split("/")) parts.add(encode(s));
        return String.join("/", parts);
    }

    private static String describe(Throwable e) {
        String message = e.getMessage();
        return message == null || message.isBlank() ? e.getClass().getSimpleName() : message;
    }

    private static void sleep(Duration d) throws IOException {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /** The final response of a GET, with what the hub said along the redirect chain. */
    private static final class Response {
        HttpResponse<InputStream> http;
        URI uri;
        String linkedEtag;                      // sha256 of an LFS file, from the hub before the CDN redirect
        Optional<Long> linkedSize = Optional.empty();
        String errorCode;                       // X-Error-Code: RepoNotFound, RevisionNotFound, EntryNotFound, ...
    }

    /** A connection problem worth retrying: the part file is kept and the next try resumes it. */
    private static final class DroppedTransfer extends IOException {
        DroppedTransfer(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** Marks errors of the local disk, so they are not mistaken for a dropped connection and retried. */
    private static final class WriteGuard extends java.io.FilterOutputStream {
        static final class WriteFailed extends IOException {
            WriteFailed(IOException cause) {
                super(cause);
            }
        }

        WriteGuard(OutputStream out) {
            super(out);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            try {
                out.write(b, off, len);
            } catch (IOException e) {
                throw new WriteFailed(e);
            }
        }
    }
}
