/*
 * EstClientTest - a second, independent EST client against tca-estd
 * (tests/integration/est-java.sh): BouncyCastle's EST client
 * (org.bouncycastle.est, Debian's libbcpkix-java) on the JDK's own TLS
 * (SunJSSE). Plain Java 17, compiled by the test script with javac.
 *
 *   java EstClientTest URL TLS-CA-FILE DEVICE-ID PASSWORD-FILE OUT-DIR
 *
 * URL is https://HOST:PORT/.well-known/est/LABEL (the label is the tenant);
 * TLS-CA-FILE the PEM certificate the server's TLS certificate is checked
 * against; the password file holds the device's one-time password (one
 * line). In order:
 *
 *   1. /cacerts: the tenant's CA certificate (commonName LABEL); /csrattrs:
 *      commonName among the attributes
 *   2. /simpleenroll, HTTP Basic with a wrong password: 401
 *   3. /simpleenroll, HTTP Basic with the password: a certificate for the
 *      CSR's key, commonName DEVICE-ID, that verifies against the CA
 *      certificate (PKIX, revocation checking off)
 *   4. /simpleenroll with the same password again: 401 (used up)
 *   5. /simplereenroll without a client certificate: 401
 *   6. /simplereenroll, the certificate of 3 as TLS client certificate, a
 *      new key: a new certificate for the new key that verifies
 *   7. /simplereenroll again over TLS 1.2, with the certificate of 6
 *
 * Written to OUT-DIR: cacerts.pem, enrolled.pem/.key (3), reenrolled.pem/.key
 * (6), reenrolled2.pem/.key (7) (PEM; keys PKCS#8, unencrypted) for the
 * script's checks with openssl. Exit 0 if every step went as expected, 1
 * (with the reason) if not, 2 on bad usage.
 */

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLSession;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x500.style.IETFUtils;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.est.CACertsResponse;
import org.bouncycastle.est.CSRAttributesResponse;
import org.bouncycastle.est.CSRRequestResponse;
import org.bouncycastle.est.ESTAuth;
import org.bouncycastle.est.ESTClient;
import org.bouncycastle.est.ESTClientProvider;
import org.bouncycastle.est.ESTException;
import org.bouncycastle.est.ESTHijacker;
import org.bouncycastle.est.ESTRequest;
import org.bouncycastle.est.ESTRequestBuilder;
import org.bouncycastle.est.ESTResponse;
import org.bouncycastle.est.ESTService;
import org.bouncycastle.est.EnrollmentResponse;
import org.bouncycastle.est.HttpAuth;
import org.bouncycastle.est.Source;
import org.bouncycastle.est.jcajce.JsseESTServiceBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

public final class EstClientTest
{
    private static final int TIMEOUT_MS = 30000;

    private final String authority;	/* host:port */
    private final String label;
    private final X509TrustManager trust;
    private final String device;
    private final char[] password;
    private final Path out;

    private EstClientTest(String url, Path tlsCa, String device, char[] password, Path out)
        throws Exception
    {
        URI u = new URI(url);
        String prefix = "/.well-known/est/";

        if (!"https".equals(u.getScheme()) || u.getPath() == null || !u.getPath().startsWith(prefix))
            throw new IllegalArgumentException("URL must be https://HOST:PORT/.well-known/est/LABEL: " + url);
        this.authority = u.getRawAuthority();
        this.label = u.getPath().substring(prefix.length()).replaceAll("/+$", "");
        if (label.isEmpty() || label.contains("/"))
            throw new IllegalArgumentException("URL must name one label: " + url);
        this.trust = trustManager(tlsCa);
        this.device = device;
        this.password = password;
        this.out = out;
    }

    public static void main(String[] args)
    {
        if (args.length != 5) {
            System.err.println("usage: java EstClientTest URL TLS-CA-FILE DEVICE-ID PASSWORD-FILE OUT-DIR");
            System.exit(2);
        }
        try {
            String pw = new String(Files.readAllBytes(Paths.get(args[3])), StandardCharsets.UTF_8);
            int nl = pw.indexOf('\n');

            if (nl >= 0)
                pw = pw.substring(0, nl);
            pw = pw.replaceAll("\r$", "");
            new EstClientTest(args[0], Paths.get(args[1]), args[2], pw.toCharArray(),
                Paths.get(args[4])).run();
        } catch (Throwable t) {
            shims();
            System.err.println("FAIL: " + describe(t));
            t.printStackTrace();
            System.exit(1);
        }
        shims();
        System.out.println("EstClientTest: all steps passed");
        System.exit(0);
    }

    private void run()
        throws Exception
    {
        /* 1. cacerts */
        CACertsResponse cr = service(null, null).getCACerts();
        check(cr.hasCertificates(), "cacerts: no certificates");
        check(cr.isTrusted(), "cacerts: the client says the TLS server was not trusted");
        List<X509Certificate> cas = new ArrayList<>();
        for (X509CertificateHolder h : ESTService.storeToArray(cr.getCertificateStore()))
            cas.add(jca(h));
        X509Certificate ca = null;
        for (X509Certificate c : cas)
            if (label.equals(commonName(c)))
                ca = c;
        check(ca != null, "cacerts: no certificate with commonName " + label + " among " + subjects(cas));
        ca.verify(ca.getPublicKey());	/* self-signed: the tenant's root */
        writePem("cacerts.pem", "CERTIFICATE", cas.stream().map(EstClientTest::encoded).toArray(byte[][]::new));
        step("cacerts: %d certificate(s), the CA %s (serial %s)", cas.size(),
            ca.getSubjectX500Principal().getName(), ca.getSerialNumber().toString(16));

        /* csrattrs: what the CSR must hold; commonName at least */
        CSRRequestResponse ar = service(null, null).getCSRAttributes();
        check(ar.hasAttributesResponse(), "csrattrs: no attributes");
        CSRAttributesResponse attrs = ar.getAttributesResponse();
        check(attrs.hasRequirement(BCStyle.CN), "csrattrs: commonName is not among " + attrs.getRequirements());
        step("csrattrs: %s", attrs.getRequirements());

        /* 2. simpleenroll, a wrong password */
        KeyPair k1 = ecKey();
        PKCS10CertificationRequest csr1 = csr(k1);
        char[] wrong = ("wrong-" + new String(password)).toCharArray();
        expectStatus(401, "simpleenroll with a wrong password",
            () -> service(null, null).simpleEnroll(false, csr1, basicAuth(device, wrong)));
        step("simpleenroll, HTTP Basic with a wrong password: 401");

        /* 3. simpleenroll, the password */
        EnrollmentResponse er = service(null, null).simpleEnroll(false, csr1, basicAuth(device, password));
        X509Certificate c1 = issued(er, "simpleenroll", k1, ca);
        writePem("enrolled.pem", "CERTIFICATE", c1.getEncoded());
        writePem("enrolled.key", "PRIVATE KEY", k1.getPrivate().getEncoded());
        step("simpleenroll, HTTP Basic as %s: certificate serial %s, %s, verifies against the CA",
            device, c1.getSerialNumber().toString(16), c1.getSubjectX500Principal().getName());

        /* 4. the same password again */
        KeyPair k1b = ecKey();
        PKCS10CertificationRequest csr1b = csr(k1b);
        expectStatus(401, "simpleenroll with the used password",
            () -> service(null, null).simpleEnroll(false, csr1b, basicAuth(device, password)));
        step("simpleenroll with the same password again: 401");

        /* 5. simplereenroll without a client certificate */
        KeyPair k2 = ecKey();
        PKCS10CertificationRequest csr2 = csr(k2);
        expectStatus(401, "simplereenroll without a client certificate",
            () -> service(null, null).simpleEnroll(true, csr2, null));
        step("simplereenroll without a TLS client certificate: 401");

        /* 6. simplereenroll, the current certificate as TLS client certificate */
        EnrollmentResponse rr = service(keyManager(k1.getPrivate(), c1), null).simpleEnroll(true, csr2, null);
        X509Certificate c2 = issued(rr, "simplereenroll", k2, ca);
        check(!c2.getSerialNumber().equals(c1.getSerialNumber()), "simplereenroll returned the old certificate");
        check(c2.getSubjectX500Principal().equals(c1.getSubjectX500Principal()),
            "simplereenroll: subject " + c2.getSubjectX500Principal() + " is not " + c1.getSubjectX500Principal());
        writePem("reenrolled.pem", "CERTIFICATE", c2.getEncoded());
        writePem("reenrolled.key", "PRIVATE KEY", k2.getPrivate().getEncoded());
        step("simplereenroll, TLS client certificate %s (%s): new certificate serial %s, verifies against the CA",
            c1.getSerialNumber().toString(16), tls(rr.getSession()), c2.getSerialNumber().toString(16));

        /* 7. once more over TLS 1.2 (the client certificate in the other handshake) */
        KeyPair k3 = ecKey();
        EnrollmentResponse rr2 = service(keyManager(k2.getPrivate(), c2), "TLSv1.2")
            .simpleEnroll(true, csr(k3), null);
        X509Certificate c3 = issued(rr2, "simplereenroll over TLS 1.2", k3, ca);
        check(tls(rr2.getSession()).startsWith("TLSv1.2"), "not TLS 1.2: " + tls(rr2.getSession()));
        check(!c3.getSerialNumber().equals(c2.getSerialNumber()), "simplereenroll returned the old certificate");
        writePem("reenrolled2.pem", "CERTIFICATE", c3.getEncoded());
        writePem("reenrolled2.key", "PRIVATE KEY", k3.getPrivate().getEncoded());
        step("simplereenroll, TLS client certificate %s (%s): new certificate serial %s, verifies against the CA",
            c2.getSerialNumber().toString(16), tls(rr2.getSession()), c3.getSerialNumber().toString(16));
    }

    /* ------------------------------------------------------------ helpers */

    /* BC's EST client with the JDK's TLS (SunJSSE): the server checked
     * against the TLS CA file and by name (BC's JsseDefaultHostnameAuthorizer,
     * subjectAltName); km: the client's key and certificate; tlsVersion: an
     * SSLContext protocol, null for "TLS" (1.3 and 1.2) */
    private ESTService service(KeyManagerFactory km, String tlsVersion)
    {
        JsseESTServiceBuilder b = new Rfc8951Builder(authority, trust);

        b.withTimeout(TIMEOUT_MS);
        if (tlsVersion != null)
            b.withTLSVersion(tlsVersion);
        if (km != null)
            b.withKeyManagers(km.getKeyManagers());
        b.withLabel(label);
        return b.build();
    }

    /*
     * Two shims around BouncyCastle's EST client, for two places where BC
     * (1.72, and its main branch still) disagrees with tca-estd and
     * tca-estd follows the RFCs (the report of issue 14 has the details).
     * Each does nothing to an answer that needs no help, and counts what it
     * touched; main prints the counts.
     *
     * 1. RFC 8951 section 3: an EST body is base64 "regardless of any
     *    Content-Transfer-Encoding header, and any value in such a header
     *    MUST be ignored"; tca-estd sends none (docs/est.md). BC's
     *    ESTResponse decodes base64 only when the answer says
     *    "Content-Transfer-Encoding: base64" (RFC 7030 before RFC 8951) and
     *    otherwise parses the base64 text as DER. Rfc8951Client hands BC
     *    each 200 answer without the header again with it added: BC's own
     *    base64 decoder then reads the body.
     *
     * 2. BC's HttpAuth (Basic and Digest) answers a 401 challenge by
     *    closing that response unread, and ESTResponse.close() throws
     *    ("Stream closed before limit fully read") when more than one byte
     *    of its body is unread: HttpAuth works only with a 401 that has an
     *    empty body. tca-estd's 401 carries a one-line text/plain reason
     *    (RFC 9110 15.5.2 allows a body; RFC 7030 3.2.3 says nothing
     *    against one). basicAuth reads the challenge's body and gives BC's
     *    HttpAuth the challenge without it; HttpAuth itself then sends the
     *    credentials on a new connection as it always does.
     */
    private static int cteAdded;	/* 200 answers given a Content-Transfer-Encoding */
    private static int challengeBodies;	/* 401 challenges whose body HttpAuth was spared */

    private static final class Rfc8951Builder extends JsseESTServiceBuilder
    {
        Rfc8951Builder(String server, X509TrustManager trust)
        {
            super(server, trust);
        }

        @Override
        public ESTService build()
        {
            super.build();	/* makes BC's default client provider */
            final ESTClientProvider bc = clientProvider;
            clientProvider = new ESTClientProvider()
            {
                public ESTClient makeClient()
                    throws ESTException
                {
                    return new Rfc8951Client(bc.makeClient());
                }

                public boolean isTrusted()
                {
                    return bc.isTrusted();
                }
            };
            return super.build();	/* the rest is set now: just the service */
        }
    }

    private static final class Rfc8951Client implements ESTClient
    {
        private final ESTClient bc;

        Rfc8951Client(ESTClient bc)
        {
            this.bc = bc;
        }

        public ESTResponse doRequest(ESTRequest req)
            throws IOException
        {
            ESTResponse r = bc.doRequest(req);

            if (r.getStatusCode() != 200 || r.getHeader("Content-Transfer-Encoding") != null)
                return r;
            cteAdded++;
            return new ESTResponse(req, replay(r, "content-transfer-encoding", "base64", body(r)));
        }
    }

    /* BC's HttpAuth, spared the body of the 401 challenge it answers */
    private static ESTAuth basicAuth(String user, char[] password)
    {
        final HttpAuth bcAuth = new HttpAuth(user, password);

        return b -> {
            try {
                /* the hijacker HttpAuth installs, from a scratch request */
                ESTRequestBuilder scratch = new ESTRequestBuilder("POST", new URL("https://localhost/"));
                bcAuth.applyAuth(scratch);
                final ESTHijacker bc = scratch.build().getHijacker();

                b.withHijacker((req, sock) -> {
                    ESTResponse r = new ESTResponse(req, sock);

                    if (r.getStatusCode() != 401)
                        return r;	/* what HttpAuth would return */
                    if (body(r).length > 1)	/* BC copes with 0 or 1 byte */
                        challengeBodies++;
                    return bc.hijack(req, replay(r, "content-length", "0", new byte[0]));
                });
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
    }

    /* the rest of an answer's body (its Content-Length), read through BC */
    private static byte[] body(ESTResponse r)
        throws IOException
    {
        Long len = r.getContentLength();

        if (len == null || len < 0 || len > 1 << 20)
            throw new IOException("answer without a usable Content-Length: " + len);
        return r.getInputStream().readNBytes((int)(long)len);
    }

    /* an answer BC parsed already, as bytes for a new ESTResponse: the same
     * status and headers, header `name` set to `value`, and `body`; closing
     * it closes the original (and its connection) */
    private static Source<Object> replay(final ESTResponse r, String name, String value, byte[] body)
    {
        StringBuilder head = new StringBuilder(r.getHttpVersion() + " " + r.getStatusCode() + " "
            + r.getStatusMessage() + "\r\n");
        Map<String, String[]> headers = r.getHeaders();	/* names in lower case */

        for (Map.Entry<String, String[]> h : headers.entrySet())
            if (!h.getKey().equalsIgnoreCase(name))
                for (String v : h.getValue())
                    head.append(h.getKey()).append(": ").append(v).append("\r\n");
        head.append(name).append(": ").append(value).append("\r\n\r\n");
        byte[] h = head.toString().getBytes(StandardCharsets.ISO_8859_1);
        byte[] all = Arrays.copyOf(h, h.length + body.length);
        System.arraycopy(body, 0, all, h.length, body.length);
        final InputStream in = new ByteArrayInputStream(all);

        return new Source<Object>()
        {
            public InputStream getInputStream()
            {
                return in;
            }

            public OutputStream getOutputStream()
                throws IOException
            {
                return r.getSource().getOutputStream();
            }

            public Object getSession()
            {
                return r.getSource().getSession();
            }

            public void close()
                throws IOException
            {
                r.close();
            }
        };
    }

    /* the one certificate of an enrollment answer: for key k, commonName
     * device, a valid PKIX path to ca */
    private X509Certificate issued(EnrollmentResponse er, String what, KeyPair k, X509Certificate ca)
        throws Exception
    {
        check(er.isCompleted(), what + ": not completed (202, retry after " + er.getNotBefore() + ")");
        X509CertificateHolder[] hs = ESTService.storeToArray(er.getStore());
        check(hs.length == 1, what + ": " + hs.length + " certificates, expected 1");
        X509Certificate c = jca(hs[0]);
        check(c.getPublicKey().equals(k.getPublic()), what + ": the certificate does not carry the CSR's key");
        check(device.equals(commonName(c)),
            what + ": subject " + c.getSubjectX500Principal().getName() + ", expected commonName " + device);
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        CertPath path = cf.generateCertPath(Collections.singletonList(c));
        PKIXParameters p = new PKIXParameters(Collections.singleton(new TrustAnchor(ca, null)));
        p.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX").validate(path, p);
        return c;
    }

    interface Call
    {
        Object call() throws Exception;
    }

    private static void expectStatus(int want, String what, Call c)
        throws Exception
    {
        try {
            c.call();
        } catch (ESTException e) {
            if (e.getStatusCode() == want)
                return;
            throw new AssertionError(what + ": HTTP " + e.getStatusCode() + ", expected " + want + ": "
                + describe(e), e);
        }
        throw new AssertionError(what + ": succeeded, expected HTTP " + want);
    }

    private PKCS10CertificationRequest csr(KeyPair k)
        throws Exception
    {
        return new JcaPKCS10CertificationRequestBuilder(new X500Name("CN=" + device), k.getPublic())
            .build(new JcaContentSignerBuilder("SHA256withECDSA").build(k.getPrivate()));
    }

    private static KeyPair ecKey()
        throws Exception
    {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");

        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    /* the server's TLS certificate is checked against the PEM file's
     * certificates (the JDK's PKIX trust manager; no system store) */
    private static X509TrustManager trustManager(Path pem)
        throws Exception
    {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        int i = 0;

        ks.load(null, null);
        try (InputStream in = Files.newInputStream(pem)) {
            for (java.security.cert.Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in))
                ks.setCertificateEntry("tls-ca-" + i++, c);
        }
        if (i == 0)
            throw new IllegalArgumentException(pem + ": no certificate");
        TrustManagerFactory f = TrustManagerFactory.getInstance("PKIX");
        f.init(ks);
        for (TrustManager t : f.getTrustManagers())
            if (t instanceof X509TrustManager)
                return (X509TrustManager)t;
        throw new IllegalStateException("no X509TrustManager");
    }

    /* the device's key and certificate as TLS client credentials */
    private static KeyManagerFactory keyManager(PrivateKey key, X509Certificate cert)
        throws Exception
    {
        char[] pw = "transient".toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");

        ks.load(null, null);
        ks.setKeyEntry("device", key, pw, new java.security.cert.Certificate[] { cert });
        KeyManagerFactory f = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        f.init(ks, pw);
        return f;
    }

    private static X509Certificate jca(X509CertificateHolder h)
        throws Exception
    {
        return new JcaX509CertificateConverter().getCertificate(h);
    }

    private static byte[] encoded(X509Certificate c)
    {
        try {
            return c.getEncoded();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /* the subject's one commonName, or null */
    private static String commonName(X509Certificate c)
    {
        RDN[] cn = X500Name.getInstance(c.getSubjectX500Principal().getEncoded()).getRDNs(BCStyle.CN);

        return cn.length == 1 ? IETFUtils.valueToString(cn[0].getFirst().getValue()) : null;
    }

    private static String subjects(Collection<X509Certificate> cs)
    {
        List<String> s = new ArrayList<>();

        for (X509Certificate c : cs)
            s.add(c.getSubjectX500Principal().getName());
        return s.toString();
    }

    private void writePem(String name, String type, byte[]... ders)
        throws IOException
    {
        StringWriter w = new StringWriter();
        Base64.Encoder b64 = Base64.getMimeEncoder(64, new byte[] { '\n' });

        for (byte[] der : ders)
            w.write("-----BEGIN " + type + "-----\n" + b64.encodeToString(der) + "\n-----END " + type + "-----\n");
        Path p = out.resolve(name);
        Files.deleteIfExists(p);
        Files.createFile(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.write(p, w.toString().getBytes(StandardCharsets.US_ASCII));
    }

    private static void check(boolean ok, String what)
    {
        if (!ok)
            throw new AssertionError(what);
    }

    /* the TLS version and cipher suite of a response's connection */
    private static String tls(Object session)
    {
        if (!(session instanceof SSLSession))
            return "no TLS session?";
        return ((SSLSession)session).getProtocol() + " " + ((SSLSession)session).getCipherSuite();
    }

    private static void shims()
    {
        step("shims: %d answer(s) given Content-Transfer-Encoding: base64 (RFC 8951), "
            + "%d 401 challenge body(ies) kept from HttpAuth", cteAdded, challengeBodies);
    }

    private static void step(String fmt, Object... args)
    {
        System.out.println("EstClientTest: " + String.format(fmt, args));
    }

    /* an exception with its causes, and an ESTException's status and body */
    private static String describe(Throwable t)
    {
        StringBuilder sb = new StringBuilder();

        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (sb.length() > 0)
                sb.append(" <- ");
            sb.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
            if (c instanceof ESTException) {
                ESTException e = (ESTException)c;
                sb.append(" [HTTP ").append(e.getStatusCode());
                try (InputStream body = e.getBody()) {
                    if (body != null)
                        sb.append(", body \"").append(new String(body.readNBytes(300), StandardCharsets.UTF_8).trim())
                            .append('"');
                } catch (Exception ignored) {
                    /* the body is a hint only */
                }
                sb.append(']');
            }
        }
        return sb.toString();
    }
}
