namespace Grpc.Backup.Cluster.Tests.Infrastructure;

/// <summary>
/// A throwaway PKI made with openssl: a CA, the etcd members' server certificate (for IP 127.0.0.1) and client
/// certificates signed by the same CA, one per name (the CN, which etcd takes as the user name).
/// </summary>
internal sealed class EtcdCertificates
{
    private readonly string _directory;

    private EtcdCertificates(string directory)
    {
        _directory = directory;
    }

    public string CaCert => Path.Combine(_directory, "ca.crt");

    public string ServerCert => Path.Combine(_directory, "server.crt");

    public string ServerKey => Path.Combine(_directory, "server.key");

    public (string Cert, string Key) ClientCert(string name) => (Path.Combine(_directory, name + ".crt"), Path.Combine(_directory, name + ".key"));

    public static async Task<EtcdCertificates> CreateAsync(string directory, params string[] clients)
    {
        Directory.CreateDirectory(directory);
        var pki = new EtcdCertificates(directory);
        await OpensslAsync("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", Path.Combine(directory, "ca.key"), "-out", pki.CaCert, "-days", "2", "-subj", "/CN=gbt-etcd-ca");
        await pki.SignAsync("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
        foreach (string client in clients.Append("etcdctl"))
        {
            await pki.AddClientAsync(client);
        }
        return pki;
    }

    /// <summary>Makes one more client certificate, CN <paramref name="name"/>.</summary>
    public Task AddClientAsync(string name) => SignAsync(name, "extendedKeyUsage=clientAuth\n");

    /// <summary>A certificate from a CA the cluster does not trust, for the refusal test.</summary>
    public async Task<(string Cert, string Key)> ForeignClientAsync()
    {
        string key = Path.Combine(_directory, "foreign.key"), cert = Path.Combine(_directory, "foreign.crt");
        await OpensslAsync("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=intruder", "-addext", "extendedKeyUsage=clientAuth");
        return (cert, key);
    }

    private async Task SignAsync(string name, string extensions)
    {
        string key = Path.Combine(_directory, name + ".key"), csr = Path.Combine(_directory, name + ".csr");
        string ext = Path.Combine(_directory, name + ".ext");
        await File.WriteAllTextAsync(ext, extensions);
        await OpensslAsync("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + name);
        await OpensslAsync("x509", "-req", "-in", csr, "-CA", CaCert, "-CAkey", Path.Combine(_directory, "ca.key"), "-CAcreateserial",
            "-out", Path.Combine(_directory, name + ".crt"), "-days", "2", "-extfile", ext);
    }

    private static async Task OpensslAsync(params string[] arguments)
    {
        var (code, _, stderr) = await ChildProcess.RunAsync("/usr/bin/openssl", arguments);
        Assert.True(code == 0, $"openssl {string.Join(' ', arguments)} failed: {stderr}");
    }
}
