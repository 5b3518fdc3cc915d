using Google.Protobuf;

namespace Grpc.Backup.Service.Tests.Infrastructure;

/// <summary>
/// Reads spans out of an OTLP/HTTP <c>ExportTraceServiceRequest</c> body by walking the protobuf wire format along
/// the fields a span's identity needs (opentelemetry-proto trace/v1): resource_spans = 1 → scope_spans = 2 → spans =
/// 2 → trace_id = 1, span_id = 2, parent_span_id = 4, name = 5. Everything else is skipped.
/// </summary>
internal static class OtlpSpans
{
    public static IEnumerable<ExportedSpan> Read(byte[] exportTraceServiceRequest) =>
        Messages(exportTraceServiceRequest, 1).SelectMany(resource => Messages(resource, 2)).SelectMany(scope => Messages(scope, 2)).Select(Span);

    private static ExportedSpan Span(byte[] span)
    {
        string traceId = "", spanId = "", parentId = "", name = "";
        var input = new CodedInputStream(span);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                    traceId = Convert.ToHexString(input.ReadBytes().Span);
                    break;
                case 2 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                    spanId = Convert.ToHexString(input.ReadBytes().Span);
                    break;
                case 4 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                    parentId = Convert.ToHexString(input.ReadBytes().Span);
                    break;
                case 5 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                    name = input.ReadString();
                    break;
                default:
                    input.SkipLastField();
                    break;
            }
        }
        return new ExportedSpan(traceId, spanId, parentId, name);
    }

    private static List<byte[]> Messages(byte[] message, int field)
    {
        var found = new List<byte[]>();
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == field && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                found.Add(input.ReadBytes().ToByteArray());
            }
            else
            {
                input.SkipLastField();
            }
        }
        return found;
    }
}

internal sealed record ExportedSpan(string TraceId, string SpanId, string ParentSpanId, string Name);
