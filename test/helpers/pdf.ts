import { getDocument } from "pdfjs-dist/legacy/build/pdf.mjs";

export interface PdfTextItem {
  str: string;
  x: number;
  y: number;
  width: number;
}

export interface PdfPage {
  items: PdfTextItem[];
  text: string;
}

/** The text of every page of a PDF (with positions), and its Title, read back with pdfjs. */
export async function extractPdf(pdf: Buffer | Uint8Array): Promise<{ pages: PdfPage[]; title: unknown }> {
  const loading = getDocument({ data: new Uint8Array(pdf), useSystemFonts: false, isEvalSupported: false });
  const document = await loading.promise;
  try {
    const pages: PdfPage[] = [];
    for (let n = 1; n <= document.numPages; n++) {
      const page = await document.getPage(n);
      const content = await page.getTextContent();
      const items = content.items.flatMap((item) =>
        "str" in item
          ? [{ str: item.str, x: Number(item.transform[4]), y: Number(item.transform[5]), width: item.width }]
          : [],
      );
      pages.push({ items, text: items.map((item) => item.str).join(" ") });
    }
    const { info } = await document.getMetadata();
    return { pages, title: (info as { Title?: unknown }).Title };
  } finally {
    await loading.destroy();
  }
}

/** Collapses whitespace so that assertions do not depend on how pdfjs splits text into items. */
export function compact(text: string): string {
  return text.replace(/\s+/g, " ");
}

/** The targets of every annotation on every page (links carry a `url`). */
export async function pdfLinks(pdf: Buffer | Uint8Array): Promise<unknown[]> {
  const loading = getDocument({ data: new Uint8Array(pdf), useSystemFonts: false, isEvalSupported: false });
  const document = await loading.promise;
  try {
    const urls: unknown[] = [];
    for (let n = 1; n <= document.numPages; n++) {
      const annotations = (await (await document.getPage(n)).getAnnotations()) as { url?: unknown }[];
      urls.push(...annotations.map((annotation) => annotation.url));
    }
    return urls;
  } finally {
    await loading.destroy();
  }
}
