using Grpc.Backup.Cluster.Tests.Infrastructure;
using Grpc.Core;

namespace Grpc.Backup.Cluster.Tests;

/// <summary>Client TLS to etcd with certificates made in the test: the cluster's CA, a client certificate per host.</summary>
public sealed class ClusterTlsTests
{
    [Fact]
    public async Task AHostWithItsClientCertificateJoinsAndOneWithoutIsRefused()
    {
        await using EtcdCluster etcd = await EtcdCluster.StartAsync(tls: true);
        EtcdCertificates pki = etcd.Tls!;
        await pki.AddClientAsync("host-a");
        var (cert, key) = pki.ClientCert("host-a");
        await using (ClusterSession a = await ClusterSession.ConnectAsync(new ClusterOptions
        {
            Endpoints = etcd.Endpoints, Node = "host-a", CaFile = pki.CaCert, CertFile = cert, KeyFile = key,
        }))
        {
            await using ClusterSlot slot = await a.AcquireSlotAsync("shared", 1, 1);
            Assert.True(slot.Revision > 0);
            Assert.Equal(["host-a"], await a.ListNodesAsync());
        }

        // A certificate from another CA: etcd's --client-cert-auth refuses the handshake.
        var (foreignCert, foreignKey) = await pki.ForeignClientAsync();
        await Assert.ThrowsAnyAsync<RpcException>(() => ClusterSession.ConnectAsync(new ClusterOptions
        {
            Endpoints = etcd.Endpoints, Node = "intruder", CaFile = pki.CaCert, CertFile = foreignCert, KeyFile = foreignKey,
        }));

        // And a member whose certificate the host's CA did not sign is not trusted by the host.
        string otherCa = Path.Combine(Path.GetDirectoryName(pki.CaCert)!, "foreign.crt");
        await Assert.ThrowsAnyAsync<RpcException>(() => ClusterSession.ConnectAsync(new ClusterOptions
        {
            Endpoints = etcd.Endpoints, Node = "host-a", CaFile = otherCa, CertFile = cert, KeyFile = key,
        }));
    }
}
