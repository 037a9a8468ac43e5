package xllm.server;

import java.io.IOException;
import java.io.InputStream;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Locale;

/**
 * Turns a media URL of a request into its bytes, under the server's policy:
 * <ul>
 *   <li>{@code data:} URLs (base64) always;
 *   <li>{@code file://} only inside {@code --allowed-local-media-path}, after symbolic links are resolved;
 *   <li>{@code http(s)://} only to a host named by {@code --allowed-media-domains}, only when every address it
 *       resolves to is public (no loopback, private, link-local or unique-local address: no SSRF into the machine's
 *       network), with redirects refused, a time limit, and the size capped while reading.
 * </ul>
 * Every refusal names the request field and says which flag would allow it.
 */
final class MediaFetcher {

    private final List<String> allowedDomains;
    private final Path allowedDir;          // real path, or null
    private final boolean allowPrivateAddresses;
    private final HttpClient http;

    MediaFetcher(List<String> allowedDomains, Path allowedDir) throws IOException {
        this(allowedDomains, allowedDir, false);
    }

    /** {@code allowPrivateAddresses} only for tests, whose HTTP servers live on the loopback address. */
    MediaFetcher(List<String> allowedDomains, Path allowedDir, boolean allowPrivateAddresses) throws IOException {
        this.allowedDomains = allowedDomains.stream().map(d -> d.toLowerCase(Locale.ROOT)).toList();
        this.allowedDir = allowedDir == null ? null : allowedDir.toRealPath();
        this.allowPrivateAddresses = allowPrivateAddresses;
        this.http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER)
                .connectTimeout(Duration.ofSeconds(5)).build();
    }

    /** The bytes of {@code url}, at most {@code maxBytes}; {@code where} names the request field in errors. */
    byte[] fetch(String url, long maxBytes, String where) throws ApiException {
        if (url == null || url.isBlank()) throw ApiException.badRequest(where, where + ": empty media URL");
        String lower = url.substring(0, Math.min(url.length(), 16)).toLowerCase(Locale.ROOT);
        if (lower.startsWith("data:")) return dataUrl(url, maxBytes, where);
        if (lower.startsWith("file:")) return file(url, maxBytes, where);
        if (lower.startsWith("http://") || lower.startsWith("https://")) return remote(url, maxBytes, where);
        throw ApiException.badRequest(where, where + ": unsupported URL scheme; give a data: URL (base64)");
    }

    /** A {@code data:[mime][;base64],…} URL; only base64 payloads are media. */
    static byte[] dataUrl(String url, long maxBytes, String where) throws ApiException {
        int comma = url.indexOf(',');
        if (comma < 0) throw ApiException.badRequest(where, where + ": malformed data: URL (no comma)");
        String header = url.substring(5, comma);
        if (!header.toLowerCase(Locale.ROOT).endsWith(";base64")) {
            throw ApiException.badRequest(where, where + ": data: URL must be base64 (data:<mime>;base64,…)");
        }
        return base64(url.substring(comma + 1), maxBytes, where);
    }

    /** Strict base64 (padding optional, no other characters), refused before decoding when it would be too large. */
    static byte[] base64(String text, long maxBytes, String where) throws ApiException {
        long decoded = (long) text.length() * 3 / 4;
        if (decoded > maxBytes + 2) {
            throw ApiException.tooLarge(where, String.format("%s: media of about %,d bytes exceeds the limit of %,d bytes",
                    where, decoded, maxBytes));
        }
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(text.strip());
        } catch (IllegalArgumentException e) {
            throw ApiException.badRequest(where, where + ": invalid base64 (" + e.getMessage() + ")");
        }
        if (bytes.length == 0) throw ApiException.badRequest(where, where + ": empty media (0 bytes)");
        if (bytes.length > maxBytes) {
            throw ApiException.tooLarge(where, String.format("%s: media of %,d bytes exceeds the limit of %,d bytes",
                    where, bytes.length, maxBytes));
        }
        return bytes;
    }

    private byte[] file(String url, long maxBytes, String where) throws ApiException {
        if (allowedDir == null) {
            throw ApiException.badRequest(where, where + ": file:// URLs are refused; the server reads local files only "
                    + "under a directory given with --allowed-local-media-path");
        }
        Path path;
        try {
            path = Path.of(new URI(url)).toRealPath();
        } catch (URISyntaxException | IllegalArgumentException | IOException e) {
            throw ApiException.badRequest(where, where + ": no readable file at " + url);
        }
        if (!path.startsWith(allowedDir) || !Files.isRegularFile(path)) {
            throw ApiException.badRequest(where, where + ": " + url + " is not a file under the allowed media directory");
        }
        try {
            long size = Files.size(path);
            if (size > maxBytes) {
                throw ApiException.tooLarge(where, String.format("%s: file of %,d bytes exceeds the limit of %,d bytes",
                        where, size, maxBytes));
            }
            return Files.readAllBytes(path);
        } catch (IOException e) {
            throw ApiException.badRequest(where, where + ": cannot read " + url);
        }
    }

    private byte[] remote(String url, long maxBytes, String where) throws ApiException {
        URI uri;
        try {
            uri = new URI(url);
        } catch (URISyntaxException e) {
            throw ApiException.badRequest(where, where + ": malformed URL");
        }
        String host = uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT);
        if (!allowedDomains.contains(host)) {
            throw ApiException.badRequest(where, where + ": media URLs of host '" + host + "' are refused; allow a host "
                    + "with --allowed-media-domains, or send the media as a data: URL");
        }
        if (uri.getUserInfo() != null) throw ApiException.badRequest(where, where + ": URLs with credentials are refused");
        try {
            for (InetAddress address : InetAddress.getAllByName(host)) {
                if (!allowPrivateAddresses && !isPublic(address)) {
                    throw ApiException.badRequest(where, where + ": host '" + host + "' resolves to a non-public address ("
                            + address.getHostAddress() + "); refused");
                }
            }
        } catch (UnknownHostException e) {
            throw ApiException.badRequest(where, where + ": unknown host '" + host + "'");
        }
        HttpRequest request = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(20)).GET().build();
        HttpResponse<InputStream> response;
        try {
            response = http.send(request, HttpResponse.BodyHandlers.ofInputStream());
        } catch (IOException e) {
            throw ApiException.badRequest(where, where + ": fetching " + url + " failed: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ApiException.badRequest(where, where + ": fetching " + url + " was interrupted");
        }
        try (InputStream body = response.body()) {
            int status = response.statusCode();
            if (status / 100 == 3) {
                throw ApiException.badRequest(where, where + ": " + url + " redirects (HTTP " + status + "); redirects "
                        + "are not followed");
            }
            if (status != 200) throw ApiException.badRequest(where, where + ": " + url + " answered HTTP " + status);
            byte[] bytes = body.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
            if (bytes.length > maxBytes) {
                throw ApiException.tooLarge(where, String.format("%s: %s is larger than the limit of %,d bytes", where,
                        url, maxBytes));
            }
            if (bytes.length == 0) throw ApiException.badRequest(where, where + ": " + url + " is empty");
            return bytes;
        } catch (IOException e) {
            throw ApiException.badRequest(where, where + ": reading " + url + " failed: " + e.getMessage());
        }
    }

    /** Not loopback, wildcard, private (10/8, 172.16/12, 192.168/16), link-local, multicast, CGNAT or IPv6 unique-local. */
    static boolean isPublic(InetAddress a) {
        if (a.isLoopbackAddress() || a.isAnyLocalAddress() || a.isSiteLocalAddress() || a.isLinkLocalAddress()
                || a.isMulticastAddress()) {
            return false;
        }
        byte[] b = a.getAddress();
        if (a instanceof Inet6Address) return (b[0] & 0xfe) != 0xfc;                   // fc00::/7
        return !((b[0] & 0xff) == 100 && (b[1] & 0xc0) == 64) && (b[0] & 0xff) != 0;   // 100.64/10, 0/8
    }
}
