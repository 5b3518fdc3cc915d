using System.Net.Http.Headers;
using Grpc.Backup.Service.Internal.Configuration;
using Polly;
using Polly.Retry;

namespace Grpc.Backup.Service.Internal.Notifications;

/// <summary>
/// POSTs the report as JSON. Three attempts with backoff on connection failures, timeouts, 408, 429 and 5xx; any
/// other answer is final. Failures name the target, never its URL (it may carry a token).
/// </summary>
internal sealed class WebhookSender
{
    private static readonly HttpClient Client = new(new SocketsHttpHandler
    {
        // A receiver that redirects is not followed: the body (and its headers) go only where the administrator said.
        AllowAutoRedirect = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    public WebhookSender(TimeSpan firstRetryDelay)
    {
        _pipeline = new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = 2,
                Delay = firstRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TaskCanceledException>()
                    .HandleResult(r => (int)r.StatusCode is 408 or 429 or >= 500),
            })
            .Build();
    }

    public async Task SendAsync(WebhookTarget target, JobReport report, CancellationToken cancellationToken)
    {
        Uri url = target.ResolveUrl();
        IReadOnlyList<KeyValuePair<string, string>> headers = target.ResolveHeaders();
        byte[] body = JobReportFormat.Json(report);
        using HttpResponseMessage response = await _pipeline.ExecuteAsync(async token =>
        {
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(token);
            attempt.CancelAfter(target.Timeout);
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
            request.Headers.UserAgent.Add(new ProductInfoHeaderValue("grpc-backupd", "1"));
            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            try
            {
                return await Client.SendAsync(request, attempt.Token).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                // The exception's message may quote the URL; keep only what went wrong.
                throw new HttpRequestException($"webhook {target.Name}: {e.HttpRequestError}", null, e.StatusCode);
            }
        }, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"webhook {target.Name} answered {(int)response.StatusCode} {response.ReasonPhrase}");
        }
    }
}
