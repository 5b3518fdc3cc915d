using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using dotnet_etcd;
using Grpc.Core;

namespace Grpc.Backup.Cluster.Internal;

/// <summary>
/// Builds the etcd client from <see cref="ClusterOptions"/>: plain http endpoints, or https with the cluster's CA as
/// the only trust anchor and this host's client certificate.
/// </summary>
internal static class EtcdClientFactory
{
    public static EtcdClient Create(ClusterOptions options)
    {
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("a cluster needs at least one etcd endpoint", nameof(options));
        }
        bool https = options.Endpoints.All(e => e.Scheme == Uri.UriSchemeHttps);
        if (!https && options.Endpoints.Any(e => e.Scheme != Uri.UriSchemeHttp))
        {
            throw new ArgumentException("etcd endpoints are all http:// or all https://", nameof(options));
        }
        string endpoints = string.Join(',', options.Endpoints.Select(e => e.GetLeftPart(UriPartial.Authority)));
        if (!https)
        {
            return new EtcdClient(endpoints, configureChannelOptions: channel => channel.Credentials = ChannelCredentials.Insecure);
        }
        X509Certificate2? ca = options.CaFile is null ? null : X509CertificateLoader.LoadCertificateFromFile(options.CaFile);
        X509Certificate2? client = options.CertFile is null ? null
            : X509Certificate2.CreateFromPemFile(options.CertFile, options.KeyFile ?? throw new ArgumentException("a client certificate needs its key file", nameof(options)));
        return new EtcdClient(endpoints, configureSslOptions: ssl =>
        {
            if (client is not null)
            {
                // PEM-loaded keys are ephemeral; SslStream on Linux takes them as they are.
                ssl.ClientCertificates = [client];
            }
            if (ca is not null)
            {
                ssl.RemoteCertificateValidationCallback = (_, certificate, _, errors) => ValidateAgainst(ca, certificate, errors);
            }
        });
    }

    /// <summary>The member's certificate must chain to the cluster's CA alone; its name must match the endpoint.</summary>
    private static bool ValidateAgainst(X509Certificate2 ca, X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }
}
