using Grpc.Backup.Protocol.V1;

namespace Grpc.Backup.Tests.Infrastructure;

/// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool, after the fact).</summary>
internal sealed class SynchronousProgress(Action<Progress> report) : IProgress<Progress>
{
    public void Report(Progress value) => report(value);
}
