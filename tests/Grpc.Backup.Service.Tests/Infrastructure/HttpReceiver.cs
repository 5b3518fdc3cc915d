using System.Collections.Concurrent;
using System.Net;

namespace Grpc.Backup.Service.Tests.Infrastructure;

/// <summary>
/// A real HTTP server on 127.0.0.1 that records every request it receives (a webhook receiver, an OTLP collector).
/// It answers with the queued status codes first, then 200.
/// </summary>
internal sealed class HttpReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<int> _answers = new();
    private readonly Task _loop;

    private HttpReceiver(int port)
    {
        Url = $"http://127.0.0.1:{port}/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string Url { get; }

    public ConcurrentQueue<ReceivedRequest> Requests { get; } = new();

    public static HttpReceiver Start() => new(LoopbackPorts.Free());

    public void AnswerNext(params int[] statusCodes)
    {
        foreach (int code in statusCodes)
        {
            _answers.Enqueue(code);
        }
    }

    public IReadOnlyList<ReceivedRequest> At(string path) => [.. Requests.Where(r => r.Path == path)];

    public async Task<ReceivedRequest> WaitForAsync(string path, TimeSpan timeout, Func<ReceivedRequest, bool>? match = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            ReceivedRequest? found = Requests.FirstOrDefault(r => r.Path == path && (match is null || match(r)));
            if (found is not null)
            {
                return found;
            }
            Assert.True(DateTime.UtcNow < deadline, $"no request to {path} within {timeout.TotalSeconds} s; got: "
                + string.Join(", ", Requests.Select(r => r.Path)));
            await Task.Delay(100);
        }
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            var headers = context.Request.Headers.AllKeys.Where(k => k is not null)
                .ToDictionary(k => k!, k => context.Request.Headers[k]!, StringComparer.OrdinalIgnoreCase);
            Requests.Enqueue(new ReceivedRequest(context.Request.HttpMethod, context.Request.Url!.AbsolutePath, headers, body.ToArray(),
                DateTime.UtcNow));
            context.Response.StatusCode = _answers.TryDequeue(out int code) ? code : 200;
            context.Response.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}

internal sealed record ReceivedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body, DateTime At);
